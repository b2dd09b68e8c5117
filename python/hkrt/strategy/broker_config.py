"""Brokers by name for ``hkrt run --broker``, configured from the environment or a config file.

Settings come from a TOML file (``--config``, one table per broker) and environment variables
``HKRT_<BROKER>_<KEY>`` (e.g. ``HKRT_MAIL_PASSWORD``), the environment winning.  Secrets are
never printed or logged: ``describe()`` masks every key that looks like one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hkrt._hkrt import OrderBrokerBase

BROKERS = ("test", "mail", "easytrader", "qmt")
_SECRET_WORDS = ("password", "secret", "token", "key", "comm_password")


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The broker tables of a TOML config file ({} without a file)."""
    if path is None:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {file} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {file} is not valid TOML: {err}") from None
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
    return {k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else v for k, v in values.items()}


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
    if login:
        try:
            user.prepare(**login)
        except Exception as err:  # the server's answer; never echo the login values
            why = type(err).__name__
            raise ValueError(f"easytrader server at {values['host']} refused the login: {why}") from None
    return EasyTraderOrderBroker(user, timeout=float(values.get("timeout", 30.0)))


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
