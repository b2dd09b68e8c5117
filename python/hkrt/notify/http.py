"""One JSON POST with a bounded timeout, for the webhook notifiers.  httpx is imported on the first post, so
``import hkrt.notify`` loads no HTTP library."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Answer:
    """A server's answer: status, headers, the JSON body (None when it is not a JSON object) and its text."""

    status: int
    headers: list[tuple[str, str]]
    body: dict[str, Any] | None
    text: str


class JsonPoster:
    """POSTs JSON over one kept connection pool; ``timeout`` bounds each phase (connect, write, each read)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def post(self, url: str, payload: Mapping[str, Any], params: Mapping[str, str] | None = None) -> Answer:
        """The answer; raises ``OSError`` (TimeoutError for a timeout) when none came."""
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False)
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            response = self._client.post(url, content=data, params=dict(params or {}), headers=headers)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"no answer within {self.timeout:g} s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ConnectionError(str(exc) or type(exc).__name__) from None
        text = response.text
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        return Answer(response.status_code, list(response.headers.items()), body if isinstance(body, dict) else None,
                      text[:500])  # fmt: skip

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
