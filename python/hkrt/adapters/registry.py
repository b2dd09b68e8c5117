"""The registry of venues: names, config classes and client factories (docs/adding-a-venue.md).

``hkrt spot-server --source X``, ``hkrt run --broker X`` and user code build clients here::

    from hkrt.adapters import registry
    feed = registry.data_client("sina", {"base_url": "http://127.0.0.1:8080"})
    broker = registry.execution_client("mail", {"host": "smtp.example.com", "to": "me@example.com"})

The table below lists what each venue offers without importing it (``hkrt --help`` stays fast); a venue's
package (``hkrt.adapters.<name>``, its ``VENUE`` record) is imported the first time a client, a config class
or the record itself is asked for, and importing one venue imports no other.  A test
(tests/test_adapters_registry.py) holds this table equal to the records.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hkrt.adapters.base import DataClient, Venue, VenueConfigError

if TYPE_CHECKING:
    from hkrt._hkrt import OrderBrokerBase

#: venue -> (has a data client, has an execution client), in the order the CLI lists them.
VENUES: dict[str, tuple[bool, bool]] = {
    "sim": (True, False),
    "replay": (True, False),
    "qq": (True, False),
    "sina": (True, False),
    "qmt": (True, True),
    "paper": (False, True),
    "mail": (False, True),
    "easytrader": (False, True),
}
#: other names a venue answers to: ``--broker test`` is the paper broker (TestOrderBroker).
ALIASES = {"test": "paper"}


def venues() -> list[str]:
    """Every venue's name."""
    return list(VENUES)


def data_venues() -> list[str]:
    """The venues with a data client (``hkrt spot-server --source``)."""
    return [name for name, (data, _) in VENUES.items() if data]


def execution_venues(*, aliases: bool = False) -> list[str]:
    """The venues with an execution client (``hkrt run --broker``); ``aliases`` adds their other names."""
    names = [name for name, (_, execution) in VENUES.items() if execution]
    return names + [a for a, name in ALIASES.items() if name in names] if aliases else names


def canonical(name: str) -> str:
    """The venue's own name for ``name`` (an alias resolved); ``ValueError`` for an unknown one."""
    name = ALIASES.get(name, name)
    if name not in VENUES:
        raise VenueConfigError(f"unknown venue {name!r}: expected one of {', '.join(VENUES)}")
    return name


def venue(name: str) -> Venue:
    """The :class:`Venue` record of ``name`` (imports that venue's package, and only it)."""
    record: Venue = importlib.import_module(f"hkrt.adapters.{canonical(name)}").VENUE
    return record


def data_config(name: str, config: Any = None, **overrides: Any) -> Any:
    """``name``'s data config from ``config`` (an instance, a mapping of settings, or None for the
    defaults); one-line :class:`VenueConfigError` for a bad one."""
    from hkrt.adapters.base import build_config

    record = _with(name, "data")
    assert record.data_config is not None
    return build_config(record.data_config, config, f"the {record.name} source", **overrides)


def execution_config(name: str, config: Any = None, **overrides: Any) -> Any:
    """``name``'s execution config, as :func:`data_config`."""
    from hkrt.adapters.base import build_config

    record = _with(name, "execution")
    assert record.execution_config is not None
    return build_config(record.execution_config, config, f"the {record.name} broker", **overrides)


def data_client(name: str, config: Any = None, **overrides: Any) -> DataClient:
    """A data client of ``name``, from its config (see :func:`data_config`)."""
    record = _with(name, "data")
    client: DataClient = record.factory("data")(data_config(name, config, **overrides))
    return client


def execution_client(name: str, config: Any = None, **overrides: Any) -> OrderBrokerBase:
    """An execution client (an ``OrderBrokerBase``) of ``name``, from its config (see :func:`data_config`)."""
    record = _with(name, "execution")
    client: OrderBrokerBase = record.factory("execution")(execution_config(name, config, **overrides))
    return client


def _with(name: str, role: str) -> Venue:
    canon = canonical(name)
    data, execution = VENUES[canon]
    if not (data if role == "data" else execution):
        record = venue(canon)
        why = record.no_data if role == "data" else record.no_execution
        offering = data_venues() if role == "data" else execution_venues()
        kind = "source" if role == "data" else "broker"
        raise VenueConfigError(f"{canon} is no {kind}: {why} ({kind}s: {', '.join(offering)})")
    return venue(canon)


def describe_venues() -> Mapping[str, str]:
    """name -> one-line summary, for help texts (imports every venue package: not for ``--help``)."""
    return {name: venue(name).summary for name in VENUES}
