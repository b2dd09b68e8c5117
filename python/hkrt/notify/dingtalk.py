"""DingTalk (钉钉) group custom robot (docs/alerts.md, "DingTalk").

The API, as documented: ``POST https://oapi.dingtalk.com/robot/send?access_token=TOKEN`` with a JSON body
``{"msgtype": "text", "text": {"content": ...}}`` or ``{"msgtype": "markdown", "markdown": {"title": ...,
"text": ...}}``.  With the "sign" security setting the query also carries ``timestamp`` (epoch
milliseconds) and ``sign`` = URL-encoded base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")).
The answer is HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``, or another ``errcode``: 310000 (the sign,
a keyword or the IP whitelist refused the message; also a timestamp too far from DingTalk's clock),
130101 (sent too fast: more than 20 messages a minute; the robot is then throttled for 10 minutes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from hkrt.notify.alert import Alert, fit
from hkrt.notify.base import NotifierSettings, Outcome, WebhookNotifier, clock_seconds, errcode_outcome

URL = "https://oapi.dingtalk.com/robot/send"
MAX_CHARS = 4000  # hkrt's cap: DingTalk documents none for text; one alert stays readable on a phone
ERRORS = {
    310000: "refused by the robot's security setting (sign mismatch, keyword missing, IP not whitelisted, "
    "or a clock more than an hour off): check secret and the robot's settings",
    130101: "sent too fast (over 20 messages a minute): DingTalk throttles this robot for 10 minutes",
}


@dataclass(frozen=True, kw_only=True)
class DingTalkConfig(NotifierSettings):
    access_token: str = field(repr=False)  # the webhook URL's access_token
    secret: str | None = field(default=None, repr=False)  # "SEC..." when the robot signs (加签)
    url: str = URL  # the API (a local server in tests)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.access_token:
            raise ValueError("access_token (from the robot's webhook URL) is required")


def sign(secret: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), not yet URL-encoded (httpx does)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkNotifier(WebhookNotifier):
    TYPE = "dingtalk"
    PER_MINUTE = 20.0
    config: DingTalkConfig

    def secrets(self) -> list[str]:
        return [s for s in (self.config.access_token, self.config.secret) if s]

    def payload(self, alert: Alert) -> dict[str, object]:
        if self.config.markdown:
            markdown = {"title": fit(alert.headline, 100), "text": fit(alert.markdown(), MAX_CHARS)}
            return {"msgtype": "markdown", "markdown": markdown}
        return {"msgtype": "text", "text": {"content": fit(alert.plain(), MAX_CHARS)}}

    def _attempt(self, alert: Alert) -> Outcome:
        params = {"access_token": self.config.access_token}
        if self.config.secret:
            stamp = int(clock_seconds() * 1000)
            params.update(timestamp=str(stamp), sign=sign(self.config.secret, stamp))
        answer = self._post(self.config.url, self.payload(alert), params)
        return errcode_outcome(answer, "DingTalk", ERRORS)  # 130101 throttles for 10 minutes: no retry
