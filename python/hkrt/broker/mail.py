"""Moved to :mod:`hkrt.adapters.mail` (``execution.py``; the scrubber to :mod:`hkrt.adapters.redaction`);
these names stay importable from here (``from hkrt.broker.mail import MailOrderBroker, redact_secrets``)."""

from hkrt.adapters._moved import forward
from hkrt.adapters.mail.execution import MailOrderBroker, Security
from hkrt.adapters.redaction import redact_secrets

__all__ = ["MailOrderBroker", "Security", "redact_secrets"]

__getattr__ = forward(__name__, "hkrt.adapters.mail.execution", "hkrt.adapters.mail.mapping", "hkrt.adapters.redaction")
