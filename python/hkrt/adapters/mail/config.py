"""The mail notifier's settings (docs/broker-mail.md).

From a TOML table ``[mail]``, ``HKRT_MAIL_*`` or keywords through
``hkrt.adapters.registry.execution_config("mail", ...)``; ``host`` and ``to`` are required.  The password
never shows in ``repr``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SECURITIES = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class MailConfig:
    host: str
    to: str | list[str]  # one or more addresses: a list, or "a@x.com, b@y.com"
    port: int | None = None  # None: the security's default (465, 587 or 25)
    user: str | None = None  # None: no AUTH (a local relay)
    password: str | None = field(default=None, repr=False)
    sender: str | None = None  # default: the user
    security: str = "ssl"
    timeout: float = 10.0
    name: str = "MailOrderBroker"
    subject_prefix: str = "[hkrt]"
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host (the SMTP server) is required")
        if not self.to:
            raise ValueError("to (the recipients) is required")
        object.__setattr__(self, "security", self.security.strip().lower())
        if self.security not in SECURITIES:
            raise ValueError(f"security must be one of {', '.join(SECURITIES)}, not {self.security!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {self.timeout:g}")

    def settings(self) -> dict[str, Any]:
        """The keywords of ``MailOrderBroker.from_config``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
