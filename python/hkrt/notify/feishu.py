"""Feishu (飞书) custom bot (docs/alerts.md, "Feishu").

The API, as documented: ``POST https://open.feishu.cn/open-apis/bot/v2/hook/HOOK`` with ``{"msg_type":
"text", "content": {"text": ...}}``, or an ``interactive`` card whose ``lark_md`` text renders markdown.
With "signature verification" on, the body also carries ``timestamp`` (epoch *seconds*, a string) and
``sign`` = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")) -- the reverse of DingTalk's roles.
The answer is ``{"code": 0, ...}`` (older bots: ``{"StatusCode": 0}``), else a ``code`` and ``msg``, often
with HTTP 200: 19021 (sign mismatch, or a timestamp more than an hour off), 11232 (sent too fast: 100 a
minute, 5 a second).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from hkrt.notify.alert import Alert, fit
from hkrt.notify.base import OK, NotifierSettings, Outcome, WebhookNotifier, clock_seconds, http_outcome

URL = "https://open.feishu.cn/open-apis/bot/v2/hook"
MAX_CHARS = 4000  # hkrt's cap, well within Feishu's 20 KB request body
ERRORS = {
    19021: "sign mismatch, or this machine's clock is more than an hour off: check secret and the clock",
    11232: "sent too fast (over 100 messages a minute or 5 a second)",
}
RATE_LIMITED = 11232


@dataclass(frozen=True, kw_only=True)
class FeishuConfig(NotifierSettings):
    hook: str = field(repr=False)  # the last part of the webhook URL (.../bot/v2/hook/<hook>)
    secret: str | None = field(default=None, repr=False)  # when signature verification is on
    url: str = URL

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hook:
            raise ValueError("hook (the last part of the bot's webhook URL) is required")


def sign(secret: str, timestamp_s: int) -> str:
    """base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class FeishuNotifier(WebhookNotifier):
    TYPE = "feishu"
    PER_MINUTE = 100.0
    config: FeishuConfig

    def secrets(self) -> list[str]:
        return [s for s in (self.config.hook, self.config.secret) if s]

    def payload(self, alert: Alert) -> dict[str, object]:
        if self.config.markdown:
            body = fit("\n".join(alert.markdown().splitlines()[1:]), MAX_CHARS)  # the card's header holds line 1
            card = {
                "header": {"title": {"tag": "plain_text", "content": fit(alert.headline, 100)}},
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": body}}],
            }
            return {"msg_type": "interactive", "card": card}
        return {"msg_type": "text", "content": {"text": fit(alert.plain(), MAX_CHARS)}}

    def _attempt(self, alert: Alert) -> Outcome:
        payload = self.payload(alert)
        if self.config.secret:
            stamp = int(clock_seconds())
            payload.update(timestamp=str(stamp), sign=sign(self.config.secret, stamp))
        answer = self._post(f"{self.config.url.rstrip('/')}/{self.config.hook}", payload)
        body = answer.body
        code = None if body is None else body.get("code", body.get("StatusCode"))
        if code == 0 and 200 <= answer.status < 300:
            return OK
        if code is None or code == 0:  # no Feishu code: the HTTP status tells
            bad = http_outcome(answer.status, answer.headers, "Feishu")
            return bad or Outcome(False, f"Feishu answered no code: {answer.text[:100]!r}")
        assert body is not None
        why = ERRORS.get(code) if isinstance(code, int) else None
        retry = code == RATE_LIMITED or answer.status == 429 or answer.status >= 500
        return Outcome(False, f"Feishu code {code}: {why or body.get('msg', body.get('StatusMessage', ''))}",
                       retry=retry)  # fmt: skip
