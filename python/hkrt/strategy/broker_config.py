"""Brokers by name for ``hkrt run --broker``, configured from the environment or a config file.

Settings come from a TOML file (``--config``, one table per broker) and environment variables
``HKRT_<BROKER>_<KEY>`` (e.g. ``HKRT_MAIL_PASSWORD``), the environment winning.  Secrets are
never printed or logged: ``describe()`` masks every key that looks like one, and a config file
holding one that others can read gets a warning.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hkrt._hkrt import OrderBrokerBase

BROKERS = ("test", "mail", "easytrader", "qmt")
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
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    file = Path(path).expanduser()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {file} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"config file {file} is a directory") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"config file {file} is not UTF-8 text: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {file} is not valid TOML: {err}") from None
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


def _require(name: str, values: Mapping[str, Any], *keys: str) -> None:
    missing = [k for k in keys if not values.get(k)]
    if missing:
        env = ", ".join(f"HKRT_{name.upper()}_{k.upper()}" for k in missing)
        raise ValueError(f"the {name} broker needs {', '.join(missing)}: set {env} or put them in [{name}] of --config")


def make_broker(name: str, config: Mapping[str, Mapping[str, Any]] | None = None, *, cash: float) -> OrderBrokerBase:
    """Build the broker ``name`` (one of BROKERS) from its settings; ValueError naming what is missing."""
    if name not in BROKERS:
        raise ValueError(f"unknown broker {name!r}: choose one of {', '.join(BROKERS)}")
    values = settings(name, config)
    if name == "test":
        from hkrt.broker.paper import TestOrderBroker

        return TestOrderBroker(cash=float(values.get("cash", cash)))
    if name == "mail":
        return _mail(values)
    if name == "easytrader":
        return _easytrader(values)
    return _qmt(values)


def _mail(values: Mapping[str, Any]) -> OrderBrokerBase:
    from hkrt.broker.mail import MailOrderBroker

    _require("mail", values, "host", "to")
    return MailOrderBroker.from_config(values)


def _easytrader(values: Mapping[str, Any]) -> OrderBrokerBase:
    """easytrader's remote client to its server on the trading PC (docs/broker-easytrader.md)."""
    from hkrt.broker.easytrader_broker import EasyTraderOrderBroker

    _require("easytrader", values, "host", "client")
    try:
        from easytrader import remoteclient
    except ImportError as err:
        hint = "pip install easytrader"
        raise ImportError(f"the easytrader broker needs the easytrader package ({hint}): {err}") from None
    user = remoteclient.use(str(values["client"]), str(values["host"]), int(values.get("port", 1430)))
    login = {k: values[k] for k in ("user", "password", "exe_path", "comm_password", "config_path") if values.get(k)}
    # The broker first, so that the login request has its deadline and size cap, and its error text (which
    # a server may fill with the request it got) is scrubbed of the passwords.
    broker = EasyTraderOrderBroker(
        user,
        timeout=float(values.get("timeout", 30.0)),
        secrets=[str(values[k]) for k in ("password", "comm_password") if values.get(k)],
    )
    if login:
        try:
            broker.prepare(**login)
        except ValueError as err:
            raise ValueError(f"the easytrader server at {values['host']}: {err}") from None
    return broker


def _qmt(values: Mapping[str, Any]) -> OrderBrokerBase:
    from hkrt.broker.qmt import XtQuantOrderBroker

    _require("qmt", values, "path", "account")
    session = values.get("session_id")
    return XtQuantOrderBroker(
        str(values["path"]),
        int(session) if session not in (None, "") else None,
        str(values["account"]),
        account_type=str(values.get("account_type", "STOCK")),
        price_type=values.get("price_type", "FIX_PRICE"),
        strategy_name=str(values.get("strategy_name", "hkrt")),
    )
