"""Local HTTP servers speaking each notifier's documented API (docs/alerts.md), for tests/test_notify*.py.

Each is a real ``http.server`` on 127.0.0.1 that checks a request as the API's documentation says it must
be -- path and credential, signature, JSON shape, length limits -- answers as the API answers (its success
body, its error codes, its rate limit) and records every message it accepted.  Tests can also script the
next answers (``fail_next``: a 5xx, a 429) or make the server hang (``hang``) until released.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    per_minute = 20  # the API's documented limit per robot

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.messages: list[dict[str, Any]] = []  # accepted payloads
        self.refused: list[tuple[int, dict[str, Any]]] = []  # what it answered with an error
        self.requests = 0
        self.scripted: list[Reply] = []
        self.hang = threading.Event()  # set: every request waits for release (or the server's end)
        self.release = threading.Event()
        self.hung = 0  # requests that waited
        self._sent_at: list[float] = []
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fail_next(self, count: int, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.scripted.extend([(status, body, headers or {})] * count)

    def handle_post(self, path: str, query: dict[str, list[str]], headers: Any, raw: bytes) -> Reply:
        with self._lock:
            self.requests += 1
            if self.scripted:
                return self.scripted.pop(0)
        if headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self.bad_request("Content-Type must be application/json")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self.bad_request("body is not UTF-8 JSON")
        reply = self.check(path, query, body)
        if reply is not None:
            self.refused.append((reply[0], reply[1]))
            return reply
        with self._lock:
            now = time.monotonic()
            self._sent_at = [t for t in self._sent_at if now - t < 60.0]
            if len(self._sent_at) >= self.per_minute:
                limited = self.rate_limited()
                self.refused.append((limited[0], limited[1]))
                return limited
            self._sent_at.append(now)
            self.messages.append(body)
        return self.ok()

    # what each API defines
    def check(self, path: str, query: dict[str, list[str]], body: Any) -> Reply | None:
        raise NotImplementedError

    def ok(self) -> Reply:
        raise NotImplementedError

    def rate_limited(self) -> Reply:
        raise NotImplementedError

    def bad_request(self, why: str) -> Reply:
        return 400, {"error": why}, {}

    def texts(self) -> list[str]:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.server.hang.is_set():
            self.server.hung += 1
            self.server.release.wait(30)
        parsed = urllib.parse.urlsplit(self.path)
        status, body, headers = self.server.handle_post(
            parsed.path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True), self.headers, raw
        )
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (its timeout)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values and len(values) == 1 else None


class DingTalkServer(ApiServer):
    """``POST /robot/send?access_token=T[&timestamp=ms&sign=S]``; errcode 0 / 300001 / 310000 / 130101."""

    def __init__(self, token: str, secret: str | None = None) -> None:
        super().__init__()
        self.token, self.secret = token, secret

    def check(self, path: str, query: dict[str, list[str]], body: Any) -> Reply | None:
        if path != "/robot/send":
            return 404, {"errcode": 404, "errmsg": "not found"}, {}
        if _one(query, "access_token") != self.token:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}, {}
        if self.secret is not None:
            stamp, sign = _one(query, "timestamp"), _one(query, "sign")
            if stamp is None or sign is None or not stamp.isdigit():
                return 200, {"errcode": 310000, "errmsg": "sign not match"}, {}
            if abs(int(stamp) - time.time() * 1000) > 3600_000:
                return 200, {"errcode": 310000, "errmsg": "invalid timestamp"}, {}
            digest = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256).digest()
            if sign != base64.b64encode(digest).decode():
                return 200, {"errcode": 310000, "errmsg": "sign not match"}, {}
        kind = body.get("msgtype") if isinstance(body, dict) else None
        if kind == "text" and isinstance(body.get("text"), dict) and isinstance(body["text"].get("content"), str):
            return None if body["text"]["content"] else (200, {"errcode": 40035, "errmsg": "empty content"}, {})
        markdown = body.get("markdown") if kind == "markdown" else None
        if isinstance(markdown, dict) and markdown.get("title") and markdown.get("text"):
            return None
        return 200, {"errcode": 40035, "errmsg": "invalid msgtype or content"}, {}

    def ok(self) -> Reply:
        return 200, {"errcode": 0, "errmsg": "ok"}, {}

    def rate_limited(self) -> Reply:
        return 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, {}

    def texts(self) -> list[str]:
        return [m["text"]["content"] if m["msgtype"] == "text" else m["markdown"]["text"] for m in self.messages]


class WeComServer(ApiServer):
    """``POST /cgi-bin/webhook/send?key=K``: text <= 2048 bytes, markdown <= 4096 bytes; errcode 0 / 93000 / 45009."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def check(self, path: str, query: dict[str, list[str]], body: Any) -> Reply | None:
        if path != "/cgi-bin/webhook/send" or _one(query, "key") != self.key:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}, {}
        kind = body.get("msgtype") if isinstance(body, dict) else None
        limit = {"text": 2048, "markdown": 4096}.get(str(kind))
        part = body.get(kind) if limit else None
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}, {}
        if limit is not None and len(content.encode("utf-8")) > limit:
            return 200, {"errcode": 40058, "errmsg": f"content exceed max length {limit}"}, {}
        return None

    def ok(self) -> Reply:
        return 200, {"errcode": 0, "errmsg": "ok"}, {}

    def rate_limited(self) -> Reply:
        return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, {}

    def texts(self) -> list[str]:
        return [m[m["msgtype"]]["content"] for m in self.messages]


SIGN_FAIL = "sign match fail or timestamp is not within one hour from current time"


class FeishuServer(ApiServer):
    """``POST /open-apis/bot/v2/hook/H`` with ``timestamp`` + ``sign`` in the body; code 0 / 19001 / 19021 / 11232."""

    per_minute = 100

    def __init__(self, hook: str, secret: str | None = None) -> None:
        super().__init__()
        self.hook, self.secret = hook, secret

    def check(self, path: str, query: dict[str, list[str]], body: Any) -> Reply | None:
        if path != f"/open-apis/bot/v2/hook/{self.hook}":
            return 200, {"code": 19001, "data": {}, "msg": "param invalid: incoming webhook access token invalid"}, {}
        if not isinstance(body, dict):
            return 400, {"code": 9499, "msg": "Bad Request"}, {}
        if self.secret is not None:
            stamp, sign = body.get("timestamp"), body.get("sign")
            if not isinstance(stamp, str) or not stamp.isdigit() or not isinstance(sign, str):
                return 200, {"code": 19021, "data": {}, "msg": SIGN_FAIL}, {}
            key = f"{stamp}\n{self.secret}".encode()
            good = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if sign != good or abs(int(stamp) - time.time()) > 3600:
                return 200, {"code": 19021, "data": {}, "msg": SIGN_FAIL}, {}
        kind = body.get("msg_type")
        if kind == "text" and isinstance(body.get("content"), dict) and body["content"].get("text"):
            return None
        card = body.get("card") if kind == "interactive" else None
        if isinstance(card, dict) and isinstance(card.get("elements"), list) and card["elements"]:
            return None
        return 400, {"code": 9499, "msg": "Bad Request"}, {}

    def ok(self) -> Reply:
        return 200, {"code": 0, "data": {}, "msg": "success"}, {}

    def rate_limited(self) -> Reply:
        return 200, {"code": 11232, "data": {}, "msg": "frequency limited"}, {}

    def texts(self) -> list[str]:
        out = []
        for m in self.messages:
            if m["msg_type"] == "text":
                out.append(m["content"]["text"])
            else:
                card = m["card"]
                out.append(card["header"]["title"]["content"] + "\n" + card["elements"][0]["text"]["content"])
        return out


class TelegramServer(ApiServer):
    """``POST /bot<token>/sendMessage`` with chat_id and text (1-4096 chars); 429 with parameters.retry_after."""

    retry_after = 1

    def __init__(self, token: str, chat_id: str) -> None:
        super().__init__()
        self.token, self.chat_id = token, chat_id
        self.next_id = 0

    def check(self, path: str, query: dict[str, list[str]], body: Any) -> Reply | None:
        if path != f"/bot{self.token}/sendMessage":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, {}
        if not isinstance(body, dict) or str(body.get("chat_id")) != self.chat_id:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, {}
        text = body.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 4096:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}, {}
        if body.get("parse_mode") not in (None, "HTML", "MarkdownV2", "Markdown"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: unsupported parse_mode"}, {}
        return None

    def ok(self) -> Reply:
        self.next_id += 1
        return 200, {"ok": True, "result": {"message_id": self.next_id, "chat": {"id": self.chat_id}}}, {}

    def rate_limited(self) -> Reply:
        description = f"Too Many Requests: retry after {self.retry_after}"
        body = {"ok": False, "error_code": 429, "description": description}
        body["parameters"] = {"retry_after": self.retry_after}
        return 429, body, {"Retry-After": str(self.retry_after)}

    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages]


@contextlib.contextmanager
def serving(server: ApiServer) -> Iterator[ApiServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
