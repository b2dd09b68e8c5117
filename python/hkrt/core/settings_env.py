"""hkrt's environment variables (``HKRT_*``), read in one place so that a bad value fails with one line naming
the variable and what it takes (``HKRT_MAIL_PORT must be int, not 'abc'``), never a traceback.

Two kinds of variables:

- a family's settings, ``HKRT_<NAME>_<KEY>`` (a broker's, a notifier's, a venue's: ``HKRT_MAIL_PORT``,
  ``HKRT_DINGTALK_TIMEOUT``): :func:`prefixed` reads them as ``{key: value}`` where each value is an
  :class:`EnvValue`, a ``str`` that remembers its variable, so the check that converts it further on
  (:func:`hkrt.adapters.base.build_config`, the mail transport's own) names the variable through
  :func:`setting_name` instead of the bare key;
- single variables (``HKRT_HOME``, ``HKRT_STORE``, ``HKRT_HOLIDAYS_FILE``, the keys and tokens): :func:`env_text`,
  :func:`env_path`, :func:`env_number` read them (an empty value is unset) and raise :class:`SettingError`.

Where each one is read is listed in docs/operations.md ("Environment variables").
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HOME_ENV = "HKRT_HOME"


class SettingError(ValueError):
    """A bad value of an ``HKRT_*`` variable: one line naming it and what it takes."""


class EnvValue(str):
    """A setting's text as the environment gave it: a ``str`` that knows its variable."""

    variable: str

    def __new__(cls, text: str, variable: str) -> EnvValue:
        value = super().__new__(cls, text)
        value.variable = variable
        return value


def setting_name(key: str, value: Any) -> str:
    """How a setting is named in an error: its environment variable when it came from one, else its key."""
    return value.variable if isinstance(value, EnvValue) else key


def set_by(text: str, values: Mapping[str, Any]) -> str:
    """' (set by HKRT_MAIL_TIMEOUT)' when ``text`` (a check's one-line refusal) names a setting of ``values`` that
    the environment gave, else "": appended to a refusal that names only the key."""
    named = [
        v.variable for k, v in values.items() if isinstance(v, EnvValue) and re.search(rf"\b{re.escape(k)}\b", text)
    ]
    return f" (set by {', '.join(named)})" if named else ""


def prefixed(prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, EnvValue]:
    """The ``{prefix}<KEY>`` variables as ``{key: value}`` (keys lower case; values :class:`EnvValue`)."""
    env = os.environ if environ is None else environ
    return {
        name[len(prefix) :].lower(): EnvValue(value, name)
        for name, value in env.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


def env_text(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's text, stripped; None when unset or empty."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return value or None


def env_path(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The variable as a path (``~`` expanded); None when unset or empty."""
    value = env_text(name, environ)
    if value is None:
        return None
    if "\0" in value:
        raise SettingError(f"{name}={value!r}: expected a path")
    return Path(value).expanduser()


def env_number(
    name: str,
    kind: type[int] | type[float] = int,
    *,
    minimum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> int | float | None:
    """The variable as an ``int`` or ``float`` (at least ``minimum``); None when unset or empty."""
    value = env_text(name, environ)
    if value is None:
        return None
    try:
        number = kind(value)
    except ValueError:
        raise SettingError(f"{name}={value!r}: expected {'an integer' if kind is int else 'a number'}") from None
    if minimum is not None and number < minimum:
        raise SettingError(f"{name}={value!r}: expected at least {minimum:g}")
    return number


def hkrt_home(environ: Mapping[str, str] | None = None) -> Path:
    """hkrt's own folder: ``$HKRT_HOME``, else ``~/.hkrt`` (the demo's run folders, a node's, the strategies'
    state)."""
    return env_path(HOME_ENV, environ) or Path.home() / ".hkrt"
