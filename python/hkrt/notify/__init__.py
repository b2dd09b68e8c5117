"""hkrt.notify: alerts through notifiers of one shape (docs/alerts.md).

- :class:`AlertRouter` (``hkrt.notify.alerts``): ``AlertRouter(notifiers).attach(bus)`` turns feed silence,
  gaps, risk refusals and halts, broker rejections, dead-man firings and process restarts into alerts,
  rate-limited per kind and per notifier, sent from bounded queues on their own threads.
- the notifiers, one module each (``mail``, ``dingtalk``, ``wecom``, ``feishu``, ``telegram``), made by name
  with :func:`make_notifier` from a ``[notify.<name>]`` table and ``HKRT_<NAME>_*`` variables.
- :func:`router_from_config`: both from the TOML file the brokers use (``hkrt run --alerts FILE``).

Importing this package loads no HTTP or SMTP library: a notifier's is loaded when it is made or first sends.
"""

from __future__ import annotations

from hkrt.notify.alert import KINDS, SEVERITIES, Alert
from hkrt.notify.alerts import AlertRouter
from hkrt.notify.base import Delivery, Notifier, NotifierSettings
from hkrt.notify.registry import NOTIFIERS, NotifyConfigError, make_notifier
from hkrt.notify.settings import read_alert_settings, router_from_config

__all__ = [
    "KINDS",
    "NOTIFIERS",
    "SEVERITIES",
    "Alert",
    "AlertRouter",
    "Delivery",
    "Notifier",
    "NotifierSettings",
    "NotifyConfigError",
    "make_notifier",
    "read_alert_settings",
    "router_from_config",
]
