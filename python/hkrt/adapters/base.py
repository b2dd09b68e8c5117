"""What every venue adapter is made of: its :class:`Venue` record, the data-client protocol the spot
server drives, and typed configs built from a TOML table, environment variables or CLI flags.

A venue package (``hkrt/adapters/<venue>/``, docs/adding-a-venue.md) has the same five files:
``config.py`` (config dataclasses), ``data.py`` (the data client, or a statement that there is none),
``execution.py`` (the execution client, likewise), ``mapping.py`` (symbol codes, units and statuses at
the venue's edge) and ``__init__.py`` (its ``VENUE`` record).  This module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hkrt.core.settings_env import set_by, setting_name

if TYPE_CHECKING:
    from hkrt.core.calendar import TradingCalendar
    from hkrt.feed.server import FetchOutcome, PullSchedule, SpotServer

C = TypeVar("C")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class VenueConfigError(ValueError):
    """A venue's settings cannot make a client; the message is one line naming the setting.  ``missing``
    names the required settings that were not given (a caller adds where to give them)."""

    def __init__(self, message: str, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


@dataclass(frozen=True)
class ServePlan:
    """What the spot server asks of a data client: the codes (pull and push venues), the schedule and
    fixed rate of pull cycles, the exchange calendar, today (China), and where to say what it serves."""

    codes: Sequence[str]
    schedule: PullSchedule
    interval: float
    calendar: TradingCalendar
    today: dt.date
    say: Callable[[str], None] = print


class DataClient(Protocol):
    """A venue's data client as the spot server drives it: ``serve`` publishes through ``server`` until
    the venue has no more (a replayed or simulated day played out) or ``server.stop()``."""

    def serve(self, server: SpotServer, plan: ServePlan) -> None: ...


class PullDataClient:
    """A data client over a pull client (``fetch(codes, ...)``, as ``QQClient``, ``SinaClient`` and
    ``QmtClient``): one long-lived :class:`hkrt.fetcher.pull.PullSession`, so connections are reused,
    codes missing from an answer are re-asked in the cycle and codes the venue keeps calling unknown are
    dropped and re-probed each trading day."""

    def __init__(self, client: Any) -> None:
        from hkrt.fetcher.pull import PullSession  # imports no HTTP library (a QMT session must not)

        self.client = client
        self.session = PullSession(client)

    def fetch(self, codes: list[str]) -> FetchOutcome:
        """One pull cycle, as the spot server publishes it."""
        from hkrt.feed.server import FetchOutcome

        cycle = self.session.fetch(codes)
        return FetchOutcome(
            cycle.spots,
            len(cycle.failed_batches),
            failures=cycle.failures,
            missing_retried=len(cycle.missing_retried),
            dropped=len(cycle.dropped),
            reprobed=len(cycle.reprobed),
        )

    def serve(self, server: SpotServer, plan: ServePlan) -> None:
        server.run_pull(self.fetch, plan.codes, plan.schedule, interval=plan.interval)


@dataclass(frozen=True)
class Venue:
    """One venue as the registry lists it (``hkrt.adapters.<name>.VENUE``).

    Its clients are built by ``make_data_client(config)`` in ``hkrt.adapters.<name>.data`` and
    ``make_execution_client(config)`` in ``hkrt.adapters.<name>.execution``, from a config of
    ``data_config`` / ``execution_config``; a venue without one of them has that config ``None``, the
    factory ``None`` in its file, and ``no_data`` / ``no_execution`` saying why.  For the spot server:
    ``takes_codes`` (a pull or push venue serves a code list), ``simulated_time`` (its spot times run
    ahead of the wall clock), ``serves_today`` (the day it serves must be in the calendar's table).
    ``reports_account``: its execution client answers ``get_asset_info`` with an account's cash and positions
    (``hkrt run --book broker`` starts a strategy's book from it); False for one that keeps no account.
    """

    name: str
    summary: str
    data_config: type | None = None
    no_data: str = ""
    execution_config: type | None = None
    no_execution: str = ""
    takes_codes: bool = False
    simulated_time: bool = False
    serves_today: bool = True
    reports_account: bool = False

    def __post_init__(self) -> None:
        for role in ("data", "execution"):
            if getattr(self, f"{role}_config") is None and not getattr(self, f"no_{role}"):
                raise TypeError(f"venue {self.name}: no {role} client, and no_{role} does not say why")

    def factory(self, role: str) -> Callable[[Any], Any]:
        """``make_data_client`` or ``make_execution_client`` of this venue (imports that one file)."""
        module = importlib.import_module(f"hkrt.adapters.{self.name}.{role}")
        made: Callable[[Any], Any] | None = getattr(module, f"make_{role}_client", None)
        if made is None:
            raise VenueConfigError(f"venue {self.name} has no {role} client: {getattr(self, f'no_{role}')}")
        return made


# ----------------------------------------------------------------------------------- configs
def config_fields(cls: type) -> dict[str, Any]:
    """The settable fields of a config dataclass: name -> resolved type."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def build_config(cls: type[C], config: C | Mapping[str, Any] | None, what: str, **overrides: Any) -> C:
    """``config`` as a ``cls``: an instance is used as is (``overrides`` replace fields), a mapping (a TOML
    table, environment settings, CLI flags) is converted field by field, None gives the defaults.

    Every problem is a :class:`VenueConfigError` of one line naming ``what`` (e.g. "the mail broker"),
    the setting and what it accepts: an unknown key, a value of the wrong type, a missing required one,
    and whatever the class's own validation (``__post_init__``) refuses."""
    if isinstance(config, cls):
        values: dict[str, Any] = {}
        base: C | None = config
    elif config is None or isinstance(config, Mapping):
        values, base = dict(config or {}), None
    else:
        raise VenueConfigError(f"{what}: expected a {cls.__name__} or a table of settings, not {type(config).__name__}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    required = {f.name for f in dataclasses.fields(cls) if f.init and _required(f)}  # type: ignore[arg-type]
    values = {k: v for k, v in values.items() if not (k in required and v == "")}  # an empty variable: not set
    known = config_fields(cls)
    unknown = sorted(setting_name(k, values[k]) for k in set(values) - set(known))  # HKRT_MAIL_PORTT, not portt
    if unknown:
        raise VenueConfigError(f"{what}: unknown setting {', '.join(unknown)} (it takes {', '.join(sorted(known))})")
    converted = {k: _convert(what, k, v, known[k]) for k, v in values.items()}
    try:
        return dataclasses.replace(base, **converted) if base is not None else cls(**converted)  # type: ignore[type-var]
    except TypeError as err:  # a required field without a value
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        missing = [f.name for f in fields if f.init and f.name not in converted and _required(f)]
        if missing and base is None:
            raise VenueConfigError(f"{what} needs {', '.join(missing)}", missing) from None
        raise VenueConfigError(f"{what}: {err}") from None
    except ValueError as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        text = text if text.startswith(what) else f"{what}: {text}"
        raise VenueConfigError(text + set_by(text, values)) from None


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _convert(what: str, key: str, value: Any, kind: Any) -> Any:
    """A setting's value as its field's type; strings (environment variables, TOML strings) are parsed."""
    options = _alternatives(kind)
    if value is None and type(None) in options:
        return None
    if Any in options:
        return value
    for option in options:
        if option is type(None):
            continue
        try:
            return _as(option, value)
        except (TypeError, ValueError):
            continue  # the next alternative of a union may take it
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None))
    raise VenueConfigError(f"{what}: {setting_name(key, value)} must be {names}, not {value!r}")


def _alternatives(kind: Any) -> tuple[Any, ...]:
    """The types a field accepts: each member of a union (``int | None``), else the type itself."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(kind)
    return (kind,)


def _as(kind: Any, value: Any) -> Any:
    if typing.get_origin(kind) is typing.Literal:
        allowed = typing.get_args(kind)
        if value in allowed:
            return value
        raise ValueError(f"one of {allowed}")
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("a boolean")
    if origin is int:
        if isinstance(value, bool):
            raise ValueError("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError("an integer")
    if origin is float:
        if isinstance(value, bool):
            raise ValueError("a number")
        return float(value)
    if origin is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError("text")
    if origin is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value))
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
        return origin(value)
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, Any]):
        if isinstance(value, Mapping):
            return dict(value)
        raise ValueError("a table")
    if isinstance(kind, type):
        if isinstance(value, kind):
            return value
        return kind(value)  # e.g. Path
    return value
