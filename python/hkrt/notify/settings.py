"""Alert settings from the TOML file the brokers use (``hkrt run --alerts FILE``, docs/alerts.md)::

    [alerts]
    min_severity = "warning"      # AlertRouter's keywords
    per_kind_per_minute = 10
    notifiers = ["dingtalk", "mail"]   # default: every [notify.*] table

    [notify.dingtalk]
    access_token = "..."          # or HKRT_DINGTALK_ACCESS_TOKEN
    secret = "SEC..."

A file holding a secret that its group or others can read is logged at WARNING, as the brokers' is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hkrt.notify.alerts import AlertRouter
from hkrt.notify.base import Notifier
from hkrt.notify.registry import NotifyConfigError, make_notifier

ROUTER_KEYS = ("min_severity", "per_kind_per_minute", "per_kind_burst", "summary_interval", "queue", "source")


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` table (the router's keywords) and the ``[notify.<name>]`` tables."""

    router: dict[str, Any]
    notifiers: dict[str, dict[str, Any]]
    enabled: list[str]


def read_alert_settings(path: str | Path | None) -> AlertSettings:
    """The alert tables of a TOML file (empty without a file); ValueError naming a bad one."""
    if path is None:
        return AlertSettings({}, {}, [])
    from hkrt.core.toml_file import read_toml, secret_keys, warn_if_readable_by_others

    file = Path(path).expanduser()
    data = read_toml(file)
    secrets = [k for k in secret_keys(data) if k.split(".")[0] in ("notify", "alerts")]
    if secrets:
        warn_if_readable_by_others(file, secrets)
    alerts = data.get("alerts", {})
    notify = data.get("notify", {})
    if not isinstance(alerts, Mapping) or not isinstance(notify, Mapping):
        raise NotifyConfigError(f"{file}: [alerts] and [notify.<name>] must be tables")
    router = dict(alerts)
    enabled = router.pop("notifiers", None)
    unknown = sorted(set(router) - set(ROUTER_KEYS))
    if unknown:
        raise NotifyConfigError(f"{file}: unknown [alerts] setting {', '.join(unknown)} (it takes notifiers, "
                                f"{', '.join(ROUTER_KEYS)})")  # fmt: skip
    tables = {str(k): dict(v) for k, v in notify.items() if isinstance(v, Mapping)}
    names = list(tables) if enabled is None else [str(n) for n in enabled]
    return AlertSettings(router, tables, names)


def notifier_from_file(name: str, path: str | Path | None, **overrides: Any) -> Notifier:
    """The notifier ``name`` from the file's ``[notify.<name>]`` table and ``HKRT_<NAME>_*`` variables."""
    settings = read_alert_settings(path)
    return make_notifier(name, settings.notifiers.get(name), **overrides)


def router_from_config(path: str | Path | None, **overrides: Any) -> AlertRouter:
    """An AlertRouter with the file's notifiers and ``[alerts]`` settings (keyword overrides win);
    :class:`NotifyConfigError` naming the problem.  Not started: ``attach(bus)`` starts it."""
    settings = read_alert_settings(path)
    if not settings.enabled:
        raise NotifyConfigError(f"{path}: no notifier: add a [notify.<name>] table (docs/alerts.md)")
    notifiers = [make_notifier(name, settings.notifiers.get(name)) for name in settings.enabled]
    keywords = {**settings.router, **overrides}
    try:
        return AlertRouter(notifiers, **keywords)
    except (ValueError, TypeError) as err:
        raise NotifyConfigError(f"{path}: [alerts]: {err}") from None
