"""Telegram Bot API (docs/alerts.md, "Telegram"); blocked in mainland China, for users outside it.

The API, as documented: ``POST https://api.telegram.org/bot<token>/sendMessage`` with ``chat_id`` and
``text`` (1-4096 characters after entity parsing), optionally ``parse_mode`` (hkrt uses ``HTML``: only
``<``, ``>`` and ``&`` need escaping).  The answer is ``{"ok": true, "result": {...}}``, or ``{"ok": false,
"error_code": N, "description": ...}``; flood control answers 429 with ``parameters.retry_after`` seconds.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from hkrt.notify.alert import Alert, fit
from hkrt.notify.base import OK, NotifierSettings, Outcome, WebhookNotifier

URL = "https://api.telegram.org"
MAX_CHARS = 4096


@dataclass(frozen=True, kw_only=True)
class TelegramConfig(NotifierSettings):
    token: str = field(repr=False)  # the bot's token from @BotFather
    chat_id: str  # a chat id (a number, negative for groups) or @channelname
    url: str = URL

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.token or not self.chat_id:
            raise ValueError("token and chat_id are required")


class TelegramNotifier(WebhookNotifier):
    TYPE = "telegram"
    PER_MINUTE = 20.0  # Telegram's limit for one group
    config: TelegramConfig

    def secrets(self) -> list[str]:
        return [self.config.token]

    def payload(self, alert: Alert) -> dict[str, object]:
        if self.config.markdown:
            head = f"<b>{html.escape(alert.headline)}</b>"
            rest = html.escape("\n".join(alert.plain().splitlines()[1:]))
            text = f"{head}\n{rest}"
            if len(text) > MAX_CHARS:  # cut the plain part, never inside a tag or an entity
                text = f"{head}\n{html.escape(fit(alert.plain(), MAX_CHARS - len(head) - 200))}"
            return {"chat_id": self.config.chat_id, "text": text, "parse_mode": "HTML"}
        return {"chat_id": self.config.chat_id, "text": fit(alert.plain(), MAX_CHARS)}

    def _attempt(self, alert: Alert) -> Outcome:
        answer = self._post(f"{self.config.url.rstrip('/')}/bot{self.config.token}/sendMessage", self.payload(alert))
        body = answer.body
        if body is not None and body.get("ok") is True and 200 <= answer.status < 300:
            return OK
        description = "" if body is None else str(body.get("description", ""))
        parameters = {} if body is None else body.get("parameters") or {}
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        if answer.status == 429 or retry_after is not None:
            wait = float(retry_after) if isinstance(retry_after, (int, float)) else None
            return Outcome(False, f"Telegram flood control: {description or 'HTTP 429'}", retry=True, retry_after=wait)
        if answer.status >= 500:
            return Outcome(False, f"Telegram HTTP {answer.status}: {description}", retry=True)
        if answer.status == 401:
            return Outcome(False, "Telegram refused the bot token (401 Unauthorized)")
        return Outcome(False, f"Telegram HTTP {answer.status}: {description or answer.text[:100]!r}")
