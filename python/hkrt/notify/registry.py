"""The notifiers by type, like the venue registry (:mod:`hkrt.adapters.registry`): a name, its module, its
config class; a notifier's module (and its HTTP or SMTP library) is imported the first time one is made.

Settings of a notifier named ``NAME``: its ``[notify.NAME]`` table overlaid with ``HKRT_<NAME>_<KEY>``
environment variables (the environment wins), checked by the notifier's config class: one line naming
the setting and where to give it.  ``type`` picks the notifier when the name is not one
(``[notify.ops] type = "dingtalk"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from hkrt.adapters.base import VenueConfigError, build_config
from hkrt.notify.base import Notifier, NotifierSettings

#: type -> (module, notifier class, config class), in the order docs and help list them
NOTIFIERS: dict[str, tuple[str, str, str]] = {
    "mail": ("hkrt.notify.mail", "MailNotifier", "MailNotifierConfig"),
    "dingtalk": ("hkrt.notify.dingtalk", "DingTalkNotifier", "DingTalkConfig"),
    "wecom": ("hkrt.notify.wecom", "WeComNotifier", "WeComConfig"),
    "feishu": ("hkrt.notify.feishu", "FeishuNotifier", "FeishuConfig"),
    "telegram": ("hkrt.notify.telegram", "TelegramNotifier", "TelegramConfig"),
}


class NotifyConfigError(VenueConfigError):
    """A notifier's settings cannot make it; one line naming the setting."""


def _parts(kind: str) -> tuple[type[Notifier], type[NotifierSettings]]:
    if kind not in NOTIFIERS:
        raise NotifyConfigError(f"unknown notifier type {kind!r}: expected one of {', '.join(NOTIFIERS)}")
    module_name, notifier, config = NOTIFIERS[kind]
    module = importlib.import_module(module_name)
    return getattr(module, notifier), getattr(module, config)


def env_settings(name: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``HKRT_<NAME>_<KEY>`` variables as ``{key: value}`` (keys lower case)."""
    from hkrt.core.settings_env import prefixed

    return dict(prefixed(f"HKRT_{name.upper()}_", environ))  # each value names its variable in a check's error


def notifier_settings(
    name: str, table: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """(type, settings) of the notifier ``name``: its table overlaid with its environment variables."""
    settings: dict[str, Any] = dict(table or {})
    settings.update(env_settings(name, environ))
    kind = str(settings.pop("type", name))
    settings.setdefault("name", name)
    return kind, settings


def make_notifier(
    name: str, table: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Notifier:
    """The notifier ``name`` from its ``[notify.NAME]`` table and ``HKRT_<NAME>_*``; keyword overrides win
    (``ssl_context=`` goes to the mail notifier).  :class:`NotifyConfigError` for bad settings."""
    kind, settings = notifier_settings(name, table, environ=environ)
    extra = {k: overrides.pop(k) for k in ("ssl_context",) if k in overrides}
    notifier_class, config_class = _parts(kind)
    try:
        config = build_config(config_class, settings, f"the {name} notifier", **overrides)
    except VenueConfigError as err:
        where = f"[notify.{name}] or HKRT_{name.upper()}_*"
        missing = ", ".join(f"HKRT_{name.upper()}_{k.upper()}" for k in err.missing)
        hint = f" (give it in {where}{': ' + missing if missing else ''})" if err.missing else ""
        raise NotifyConfigError(f"{err}{hint}", err.missing) from None
    try:
        return notifier_class(config, **extra)
    except (ValueError, TypeError) as err:  # what the transport itself refuses (the mail broker's checks)
        from hkrt.core.settings_env import set_by

        text = str(err).splitlines()[0]
        raise NotifyConfigError(f"the {name} notifier: {text}{set_by(text, settings)}") from None
