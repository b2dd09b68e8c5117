"""Brokers by name for ``hkrt run --broker``, configured from the environment or a config file.

The brokers are the execution clients of the venue registry (:mod:`hkrt.adapters.registry`): this module
reads their settings and hands them to ``registry.execution_client``, whose typed config classes check
them (one line naming the setting).

Settings come from a TOML file (``--config``, one table per broker) and environment variables
``HKRT_<BROKER>_<KEY>`` (e.g. ``HKRT_MAIL_PASSWORD``), the environment winning.  Secrets are
never printed or logged: ``describe()`` masks every key that looks like one, and a config file
holding one that others can read gets a warning.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hkrt._hkrt import OrderBrokerBase
from hkrt.adapters.registry import execution_venues

#: every name ``--broker`` takes: ``test`` (the paper broker's historic name), the registry's execution venues, and
#: ``remote``: a broker hosted by an ``hkrt trader`` process (docs/trader-process.md).
BROKERS = ("test", *execution_venues(), "remote")
_SECRET_WORDS = ("password", "secret", "token", "key", "comm_password")

log = logging.getLogger("hkrt.broker.config")


def _is_secret(key: str) -> bool:
    return any(w in key.lower() for w in _SECRET_WORDS)


def _secret_keys(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted names of the keys, at any depth, that look like secrets and have a value."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _secret_keys(value, f"{name}.")
        elif _is_secret(str(key)) and value not in (None, ""):
            yield name


def _warn_if_readable_by_others(file: Path, secret_keys: list[str]) -> None:
    """WARNING when a file holding secrets is readable by its group or by others (POSIX modes only: on
    Windows access is governed by ACLs, which the mode bits do not show)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(file.stat().st_mode)
    readers = [who for who, bit in (("group", stat.S_IRGRP), ("others", stat.S_IROTH)) if mode & bit]
    if readers:
        log.warning(
            "config file %s holds a secret (%s) and is readable by %s (mode %03o): run chmod 600 %s",
            file,
            ", ".join(secret_keys),
            " and ".join(readers),
            mode,
            file,
            extra={"path": str(file), "mode": f"{mode:03o}", "secret_keys": secret_keys},
        )


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The broker tables of a TOML config file ({} without a file); ``~`` is expanded.  A file holding a
    secret (a key such as ``password``) that its group or others can read is logged at WARNING."""
    if path is None:
        return {}
    from hkrt.core.toml_file import read_toml

    file = Path(path).expanduser()
    data = read_toml(file)
    secret_keys = list(_secret_keys(data))
    if secret_keys:
        _warn_if_readable_by_others(file, secret_keys)
    tables = data.get("broker", data)
    return {k: dict(v) for k, v in tables.items() if isinstance(v, Mapping)}


def settings(name: str, config: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One broker's settings: its config table overlaid with ``HKRT_<NAME>_*`` variables."""
    out = dict((config or {}).get(name, {}))
    prefix = f"HKRT_{name.upper()}_"
    for key, value in os.environ.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            out[key[len(prefix) :].lower()] = value
    return out


def describe(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` safe to print: secrets replaced by ``***``."""
    return {k: "***" if _is_secret(k) else v for k, v in values.items()}


def make_broker(name: str, config: Mapping[str, Mapping[str, Any]] | None = None, *, cash: float) -> OrderBrokerBase:
    """Build the broker ``name`` (one of BROKERS) from its settings; ValueError naming what is missing
    and where to set it."""
    from hkrt.adapters import registry
    from hkrt.adapters.base import VenueConfigError

    if name not in BROKERS:
        raise ValueError(f"unknown broker {name!r}: choose one of {', '.join(BROKERS)}")
    values: dict[str, Any] = settings(name, config)
    if name == "remote":
        from hkrt.trader.remote_broker import remote_broker_from_settings

        return remote_broker_from_settings(values)
    if registry.canonical(name) == "paper":
        values.setdefault("cash", cash)
    try:
        return registry.execution_client(name, values)
    except VenueConfigError as err:
        if not err.missing:
            raise
        env = ", ".join(f"HKRT_{name.upper()}_{k.upper()}" for k in err.missing)
        raise VenueConfigError(f"{err}: set {env} or put them in [{name}] of --config", err.missing) from None
