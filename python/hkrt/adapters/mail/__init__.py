"""Mail: a notifier that mails every order it is given (SMTP); execution only.

Clients: ``execution.make_execution_client`` (:class:`~hkrt.adapters.mail.execution.MailOrderBroker`);
``data.make_data_client`` is None.  Built by name through :mod:`hkrt.adapters.registry`.
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.mail.config import MailConfig

VENUE = Venue(
    name="mail",
    summary="mails every order (SMTP): a notifier, no account",
    no_data="the mail broker sends orders and publishes no quotes",
    execution_config=MailConfig,
)

__all__ = ["VENUE"]
