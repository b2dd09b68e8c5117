"""Mail alerts, sent by the mail broker's SMTP code (:class:`hkrt.adapters.mail.execution.MailOrderBroker`,
docs/broker-mail.md): the same settings (``[notify.mail]`` or the broker's ``HKRT_MAIL_*``), the same
transport (implicit TLS by default, STARTTLS, or plain SMTP to a loopback relay), the password hidden the
same way.  Plain text only; the subject is the alert's headline.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hkrt.notify.alert import Alert, fit
from hkrt.notify.base import OK, Notifier, NotifierSettings, Outcome

if TYPE_CHECKING:
    from hkrt.adapters.mail.execution import MailOrderBroker

SUBJECT_CHARS = 200
BODY_CHARS = 20_000  # hkrt's cap: an alert is a few lines


@dataclass(frozen=True, kw_only=True)
class MailNotifierConfig(NotifierSettings):
    host: str
    to: str | list[str]
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str | None = None
    security: str = "ssl"
    subject_prefix: str = "[hkrt alert]"
    allow_insecure: bool = False
    timeout: float = 10.0
    per_minute: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.host or not self.to:
            raise ValueError("host (the SMTP server) and to (the recipients) are required")


class MailNotifier(Notifier):
    TYPE = "mail"
    PER_MINUTE = 10.0  # hkrt's own: a mailbox is no chat
    config: MailNotifierConfig

    def __init__(self, config: MailNotifierConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(config)
        from hkrt.adapters.mail.execution import MailOrderBroker  # smtplib on first use only

        c = config
        settings = {
            "host": c.host, "port": c.port, "user": c.user, "password": c.password, "sender": c.sender, "to": c.to,
            "security": c.security, "timeout": c.timeout, "subject_prefix": c.subject_prefix,
            "allow_insecure": c.allow_insecure, "name": self.name,
        }  # fmt: skip
        self.broker: MailOrderBroker = MailOrderBroker.from_config(settings, ssl_context=ssl_context)

    def secrets(self) -> list[str]:
        return [self.config.password] if self.config.password else []

    def _attempt(self, alert: Alert) -> Outcome:
        result = self.broker.deliver(fit(alert.headline, SUBJECT_CHARS), fit(alert.plain(), BODY_CHARS))
        if result.ok:
            return OK
        error = result.error
        # a login refused stays refused; a message the server may have taken must not arrive twice
        retry = "login as" not in error and "may have taken the message" not in error
        return Outcome(False, error, retry=retry)
