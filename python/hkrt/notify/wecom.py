"""WeCom (企业微信) group robot (docs/alerts.md, "WeCom").

The API, as documented: ``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` with
``{"msgtype": "text", "text": {"content": ...}}`` (at most 2048 bytes of UTF-8) or ``{"msgtype":
"markdown", "markdown": {"content": ...}}`` (at most 4096 bytes).  No signing: the key is the secret.
The answer is ``{"errcode": 0, "errmsg": "ok"}`` or another ``errcode``.  A robot sends at most 20
messages a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hkrt.notify.alert import Alert, fit
from hkrt.notify.base import NotifierSettings, Outcome, WebhookNotifier, errcode_outcome

URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
TEXT_BYTES, MARKDOWN_BYTES = 2048, 4096
ERRORS = {
    45009: "sent too fast (over 20 messages a minute)",
    93000: "the webhook key is invalid (the robot was removed or the key mistyped)",
}
RATE_LIMITED = 45009


@dataclass(frozen=True, kw_only=True)
class WeComConfig(NotifierSettings):
    key: str = field(repr=False)  # the webhook URL's key
    url: str = URL

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.key:
            raise ValueError("key (from the robot's webhook URL) is required")


class WeComNotifier(WebhookNotifier):
    TYPE = "wecom"
    PER_MINUTE = 20.0
    config: WeComConfig

    def secrets(self) -> list[str]:
        return [self.config.key]

    def payload(self, alert: Alert) -> dict[str, object]:
        if self.config.markdown:
            return {"msgtype": "markdown", "markdown": {"content": fit(alert.markdown(), MARKDOWN_BYTES, unit="bytes")}}
        return {"msgtype": "text", "text": {"content": fit(alert.plain(), TEXT_BYTES, unit="bytes")}}

    def _attempt(self, alert: Alert) -> Outcome:
        answer = self._post(self.config.url, self.payload(alert), {"key": self.config.key})
        return errcode_outcome(answer, "WeCom", ERRORS, retry_codes={RATE_LIMITED: 60.0})  # a limit per minute
