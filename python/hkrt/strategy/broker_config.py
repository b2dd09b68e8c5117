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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hkrt._hkrt import OrderBrokerBase
from hkrt.adapters.registry import execution_venues
from hkrt.core.toml_file import is_secret

#: every name ``--broker`` takes: ``test`` (the paper broker's historic name), the registry's execution venues, and
#: ``remote``: a broker hosted by an ``hkrt trader`` process (docs/trader-process.md).
BROKERS = ("test", *execution_venues(), "remote")

log = logging.getLogger("hkrt.broker.config")


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The broker tables of a TOML config file ({} without a file); ``~`` is expanded.  A file holding a
    secret (a key such as ``password``) that its group or others can read is logged at WARNING."""
    if path is None:
        return {}
    from hkrt.core.toml_file import read_toml, secret_keys, warn_if_readable_by_others

    file = Path(path).expanduser()
    data = read_toml(file)
    secrets = list(secret_keys(data))
    if secrets:
        warn_if_readable_by_others(file, secrets)
    tables = data.get("broker", data)
    return {k: dict(v) for k, v in tables.items() if isinstance(v, Mapping)}


def settings(name: str, config: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One broker's settings: its config table overlaid with ``HKRT_<NAME>_*`` variables."""
    from hkrt.core.settings_env import prefixed

    out = dict((config or {}).get(name, {}))
    out.update(prefixed(f"HKRT_{name.upper()}_"))  # each value names its variable in a check's error
    return out


def describe(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` safe to print: secrets replaced by ``***``."""
    return {k: "***" if is_secret(k) else v for k, v in values.items()}


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
