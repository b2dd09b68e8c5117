"""``hkrt node``'s settings: :class:`NodeConfig` from the command line's flags or a ``node.toml`` with the same
keys (a flag given on the command line wins over the file).  Every problem is one :class:`NodeConfigError`
line naming the key (an unknown key, a value of the wrong kind, a key the source does not take).

Keys (TOML spelling ``run-dir`` or ``run_dir``, the flag ``--run-dir``):

- the feed: ``source`` (a data venue of hkrt.adapters.registry: sim, qq, sina, qmt, replay), ``address``,
  ``interval``, ``phase1``, ``phase2``, ``codes``, ``base-url``, ``qmt-mode``, ``symbols``, ``date``, ``speed``,
  ``replay``, ``record`` (as ``hkrt spot-server`` takes them), and ``days`` (sim: consecutive trading days);
- the agent: ``store`` (a directory, or a ``postgresql://`` URL: the PostgreSQL recorder), ``journal``
  (default: ``store`` and ``journal`` in the run dir);
- scale-out (docs/scale-out.md): ``redis`` (a Redis URL: the spot server appends every message to its
  stream, the agent reads it through a consumer group) and ``group`` (the agent's consumer group;
  default ``hkrt-node``);
- operations: ``metrics`` (``HOST:PORT`` of the node's one ``/metrics`` and ``/health``; ``true`` or a bare
  ``--metrics``: 127.0.0.1:9300), ``alerts`` (the alerts TOML: the node's own alerts on restarts, hangs and
  give-ups, and each strategy's ``hkrt run --alerts``);
- the strategies: ``strategy``, a list of script paths or of tables ``{script, broker, state-dir, cash,
  trader}``; ``broker`` (the brokers of a strategy that names none; default test), ``broker-config`` (the
  brokers' TOML, hkrt run's ``--config``), ``cash``;
- the traders: ``trader`` (default true: each broker but test runs in an ``hkrt trader`` child,
  hkrt.node.traders; false keeps the brokers in the strategies' processes; a strategy's table may say so too);
- supervision: ``run-dir`` (logs, node.json, state; default ~/.hkrt/node), ``max-restarts``, ``restart-window``,
  ``backoff``, ``backoff-max``, ``heartbeat-timeout``, ``startup-timeout``, ``stop-timeout``, ``log-max-bytes``,
  ``log-backups``;
- the dashboard: ``dashboard`` (``HOST:PORT``: one web dashboard of all the strategies, hkrt.node.dashboard_plan),
  ``dashboard-token-file`` (its token's file, when ``$HKRT_DASHBOARD_TOKEN(_FILE)`` is not set).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: node key -> (the venue config's field, the spot-server flag) for the keys a data venue's config declares
VENUE_KEYS = {
    "interval": ("interval", "--interval"),
    "base_url": ("base_url", "--base-url"),
    "qmt_mode": ("mode", "--qmt-mode"),
    "symbols": ("symbols", "--symbols"),
    "date": ("day", "--date"),
    "speed": ("speed", "--speed"),
    "replay": ("path", "--replay"),
}
#: node key -> spot-server flag for the keys every source takes
SERVER_KEYS = {"phase1": "--phase1", "phase2": "--phase2", "codes": "--codes", "record": "--record"}
STRATEGY_KEYS = ("script", "broker", "state_dir", "cash", "trader")
DEFAULT_GROUP = "hkrt-node"  # the agent's consumer group when ``redis`` is given without ``group``
DEFAULT_METRICS = "127.0.0.1:9300"  # ``metrics = true`` or a bare ``--metrics``


class NodeConfigError(ValueError):
    """A bad node setting: one line naming it."""


@dataclass(frozen=True)
class StrategyConfig:
    """One strategy child: its script, brokers (empty: the node's ``broker``), state dir (None: the run
    dir's ``state/<script stem>``), starting cash (None: the node's, else the script's) and whether its
    brokers run in trader children (None: the node's ``trader``)."""

    script: Path
    brokers: tuple[str, ...] = ()
    state_dir: Path | None = None
    cash: float | None = None
    trader: bool | None = None

    @property
    def name(self) -> str:
        return self.script.stem


@dataclass(frozen=True)
class NodeConfig:
    source: str = "sim"
    address: str | None = None
    interval: float | None = None
    phase1: str | None = None
    phase2: str | None = None
    codes: str | None = None
    base_url: str | None = None
    qmt_mode: str | None = None
    symbols: int | None = None
    date: dt.date | None = None
    speed: float | None = None
    replay: Path | None = None
    record: Path | None = None
    days: int = 1
    store: Path | str | None = None  # a directory, or a postgresql:// URL (kept as text)
    journal: Path | None = None
    strategy: tuple[StrategyConfig, ...] = ()
    broker: tuple[str, ...] = ()
    broker_config: Path | None = None
    cash: float | None = None
    trader: bool = True
    run_dir: Path = field(default_factory=lambda: Path.home() / ".hkrt" / "node")
    max_restarts: int = 5
    restart_window: float = 300.0
    backoff: float = 0.5
    backoff_max: float = 30.0
    heartbeat_timeout: float = 15.0
    startup_timeout: float = 60.0
    stop_timeout: float = 15.0
    log_max_bytes: int = 10 << 20
    log_backups: int = 3
    metrics: str | None = None
    alerts: Path | None = None
    redis: str | None = None
    group: str | None = None
    dashboard: str | None = None
    dashboard_token_file: Path | None = None

    @property
    def store_dir(self) -> Path:
        """The store's directory (the run dir's ``store`` when ``store`` is not one: unset, or a database URL)."""
        return self.store if isinstance(self.store, Path) else self.run_dir / "store"

    @property
    def store_url(self) -> str | None:
        """The PostgreSQL URL ``store`` names, or None for a directory."""
        return self.store if isinstance(self.store, str) else None

    @property
    def agent_group(self) -> str:
        """The agent's consumer group on ``redis``."""
        return self.group or DEFAULT_GROUP

    @property
    def journal_dir(self) -> Path:
        return self.journal if self.journal is not None else self.run_dir / "journal"


KEYS = tuple(f.name for f in dataclasses.fields(NodeConfig))
_POSITIVE = {"interval", "speed", "restart_window", "backoff", "backoff_max", "heartbeat_timeout",
             "startup_timeout", "stop_timeout", "log_max_bytes", "cash"}  # fmt: skip
_AT_LEAST_ONE = {"days", "symbols"}


def _key(raw: str) -> str:
    return raw.strip().replace("-", "_")


def _shown(key: str) -> str:
    return key.replace("_", "-")


def _convert(key: str, value: Any, where: str) -> Any:
    """``value`` of ``key`` as NodeConfig holds it, or NodeConfigError naming the key."""
    hint = f"{where}{_shown(key)}"
    kind = {f.name: f.type for f in dataclasses.fields(NodeConfig)}[key]
    text = str(kind)
    try:
        if key == "strategy":
            return tuple(_strategy(item, f"{hint}[{i}]") for i, item in enumerate(_as_list(value)))
        if key == "broker":
            return tuple(_word(v, hint) for v in _as_list(value))
        if key in _OPS_KEYS:
            return _OPS_KEYS[key](value, hint)
        if key == "trader":
            return _bool(value, hint)
        if key == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(_word(value, hint))
        if "int" in text and "Path" not in text:
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
                raise ValueError(f"must be a whole number, not {value!r}")
            number: Any = int(value)
        elif "float" in text:
            if isinstance(value, bool):
                raise ValueError(f"must be a number, not {value!r}")
            number = float(value)
        elif "Path" in text:
            return Path(_word(value, hint)).expanduser()
        else:
            return _word(value, hint)
    except NodeConfigError:
        raise
    except (TypeError, ValueError) as err:
        message = str(err) if str(err).startswith("must") else f"must be {_kind_text(text)}, not {value!r}"
        raise NodeConfigError(f"{hint}: {message}") from None
    if key in _POSITIVE and not number > 0:
        raise NodeConfigError(f"{hint}: must be positive, not {value!r}")
    if key in _AT_LEAST_ONE and number < 1:
        raise NodeConfigError(f"{hint}: must be at least 1, not {value!r}")
    if key in ("max_restarts", "log_backups") and number < 0:
        raise NodeConfigError(f"{hint}: must be 0 or more, not {value!r}")
    return number


def _kind_text(type_text: str) -> str:
    return "a number" if "float" in type_text else "a whole number" if "int" in type_text else "text"


def _word(value: Any, hint: str) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise NodeConfigError(f"{hint}: must be non-empty text, not {value!r}")
    return str(value).strip()


def _store(value: Any, hint: str) -> Path | str:
    """A directory, or a ``postgresql://`` URL (never quoted back: it may hold a password)."""
    text = _word(value, hint)
    if "://" not in text:
        return Path(text).expanduser()
    from hkrt.pgstore.url import is_postgres_url, redact_url

    if not is_postgres_url(text):
        raise NodeConfigError(f"{hint}: {redact_url(text)!r} is neither a directory nor a postgresql:// URL")
    return text


def _metrics(value: Any, hint: str) -> str | None:
    if value is True:
        return DEFAULT_METRICS
    if value is False:
        return None
    return _word(value, hint)


def _redis(value: Any, hint: str) -> str:
    from hkrt.feed.redis_url import parse_redis_url

    text = _word(value, hint)
    try:
        parse_redis_url(text)  # its errors never quote the password
    except ValueError as err:
        raise NodeConfigError(f"{hint}: {err}") from None
    return text


_OPS_KEYS: dict[str, Callable[[Any, str], Any]] = {
    "store": _store,
    "metrics": _metrics,
    "redis": _redis,
    "group": _word,
    "alerts": lambda value, hint: Path(_word(value, hint)).expanduser(),
}


def _bool(value: Any, hint: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise NodeConfigError(f"{hint}: must be true or false, not {value!r}")


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [v for v in (p.strip() for p in value.split(",")) if v]
    return [value]


def _strategy(item: Any, hint: str) -> StrategyConfig:
    if isinstance(item, StrategyConfig):
        return item
    if isinstance(item, (str, os.PathLike)):
        return StrategyConfig(Path(_word(item, hint)).expanduser())
    if not isinstance(item, Mapping):
        raise NodeConfigError(f"{hint}: a script path or a table with script, broker, state-dir, cash, trader")
    table = {_key(k): v for k, v in item.items()}
    unknown = sorted(set(table) - set(STRATEGY_KEYS))
    if unknown:
        raise NodeConfigError(
            f"{hint}: unknown key {_shown(unknown[0])!r} (a strategy takes {', '.join(map(_shown, STRATEGY_KEYS))})"
        )
    if "script" not in table:
        raise NodeConfigError(f"{hint}: needs script (the strategy's Python file)")
    cash = table.get("cash")
    if cash is not None:
        try:
            cash = float(cash)
        except (TypeError, ValueError):
            raise NodeConfigError(f"{hint}.cash: must be a number, not {cash!r}") from None
        if not cash > 0:
            raise NodeConfigError(f"{hint}.cash: must be positive, not {cash!r}")
    state = table.get("state_dir")
    return StrategyConfig(
        Path(_word(table["script"], f"{hint}.script")).expanduser(),
        tuple(_word(b, f"{hint}.broker") for b in _as_list(table.get("broker", []))),
        Path(_word(state, f"{hint}.state-dir")).expanduser() if state is not None else None,
        cash,
        _bool(table["trader"], f"{hint}.trader") if "trader" in table else None,
    )


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings of a node.toml (its top-level keys), or NodeConfigError naming the file."""
    from hkrt.core.toml_file import read_toml as read

    try:
        return read(path)
    except ValueError as err:
        raise NodeConfigError(str(err)) from None


def node_config(file_settings: Mapping[str, Any] | None = None, flags: Mapping[str, Any] | None = None,
                *, file_name: str = "node.toml") -> NodeConfig:  # fmt: skip
    """The node's config from a file's settings, then the flags given on the command line (winning);
    checked whole: every value's kind, the keys the source takes, the strategies' scripts and brokers."""
    values: dict[str, Any] = {}
    for where, settings in ((f"{file_name}: ", file_settings or {}), ("--", flags or {})):
        for raw, value in settings.items():
            key = _key(raw)
            if key not in KEYS:
                raise NodeConfigError(f"{where}unknown key {_shown(raw)!r} (keys: {', '.join(map(_shown, KEYS))})")
            if value is None:
                continue
            values[key] = _convert(key, value, where)
    config = NodeConfig(**values)
    check(config)
    return config


def check(config: NodeConfig) -> None:
    """What needs more than one key: the source's own settings, days, the strategies."""
    from hkrt.adapters import registry
    from hkrt.adapters.base import VenueConfigError, config_fields

    if config.source not in registry.data_venues():
        raise NodeConfigError(f"source: {config.source!r} is not one of {', '.join(registry.data_venues())}")
    venue = registry.venue(config.source)
    taken = set(config_fields(venue.data_config)) if venue.data_config is not None else set()
    settings: dict[str, Any] = {}
    for key, (venue_field, _flag) in VENUE_KEYS.items():
        value = getattr(config, key)
        if value is None:
            continue
        if venue_field not in taken:
            raise NodeConfigError(f"{_shown(key)}: does not apply to source {config.source}")
        settings[venue_field] = str(value) if isinstance(value, Path) else value
    try:
        registry.data_config(config.source, settings)
    except VenueConfigError as err:
        if err.missing:
            needed = ", ".join(_shown(k) for k, (f, _) in VENUE_KEYS.items() if f in err.missing) or str(err)
            raise NodeConfigError(f"source {config.source} needs {needed}") from None
        raise NodeConfigError(str(err)) from None
    if config.days > 1 and config.source != "sim":
        raise NodeConfigError(f"days: is for source sim (a {config.source} feed plays its own days)")
    names = [s.name for s in config.strategy]
    for s in config.strategy:
        if not s.script.is_file():
            raise NodeConfigError(f"strategy: no script {s.script}")
        if names.count(s.name) > 1:
            raise NodeConfigError(f"strategy: two scripts named {s.name} (each strategy's name is its file's stem)")
    from hkrt.strategy.broker_config import BROKERS

    for broker in (*config.broker, *(b for s in config.strategy for b in s.brokers)):
        if broker not in BROKERS:
            raise NodeConfigError(f"broker: unknown broker {broker!r}: choose one of {', '.join(BROKERS)}")
    from hkrt.node.traders import trader_children

    trader_children(config)  # a strategy that would need two traders: one line
    if config.backoff_max < config.backoff:
        raise NodeConfigError(f"backoff-max: must be at least backoff ({config.backoff:g}), not {config.backoff_max:g}")
    check_ops(config)


def check_ops(config: NodeConfig) -> None:
    """The operations keys: the metrics address and its token, the alerts file, redis and group together."""
    if config.group is not None and config.redis is None:
        raise NodeConfigError("group: needs redis (the agent's consumer group on that Redis)")
    if config.metrics is not None:
        from hkrt.ops.access import AccessError, check_bind, load_token, parse_address

        try:
            check_bind(parse_address(config.metrics), load_token())
        except AccessError as err:
            raise NodeConfigError(f"metrics: {err}") from None
    if config.alerts is not None:
        if not config.alerts.is_file():
            raise NodeConfigError(f"alerts: no file {config.alerts}")
        from hkrt.notify import router_from_config

        try:
            router_from_config(config.alerts)  # made, not started: every notifier's settings checked
        except (ValueError, TypeError, ImportError, OSError) as err:
            raise NodeConfigError(f"alerts: {err}") from None


def sim_days(config: NodeConfig) -> list[dt.date]:
    """The trading days a sim node plays: ``days`` of them from ``date``, or ending on the latest trading
    day up to today."""
    from hkrt.core.calendar import TradingCalendar
    from hkrt.core.china_time import china_now

    calendar = TradingCalendar.china()
    if config.date is not None:
        first = calendar.first_trading_day(config.date)
        days = [first]
        while len(days) < config.days:
            days.append(calendar.next_trading_day(days[-1]))
        return days
    last = calendar.last_trading_day(china_now().date())
    days = [last]
    while len(days) < config.days:
        days.insert(0, calendar.previous_trading_day(days[0]))
    return days
