"""The venue adapters: every venue of the same shape, the registry's factories, one-line config errors, and
imports that stay within a venue (docs/adding-a-venue.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hkrt.adapters import registry
from hkrt.adapters.base import ServePlan, VenueConfigError, build_config
from hkrt.broker import OrderBrokerBase, OrderRequest, OrderSide, OrderStatus

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ROOT / "python" / "hkrt" / "adapters"
VENUE_FILES = {"__init__.py", "config.py", "data.py", "execution.py", "mapping.py"}
T0 = dt.datetime(2026, 11, 20, 10, 0)


def venue_dirs() -> list[Path]:
    return sorted(p for p in ADAPTERS.iterdir() if p.is_dir() and p.name != "__pycache__")


def test_every_venue_directory_has_the_same_files_and_is_registered() -> None:
    names = []
    for folder in venue_dirs():
        files = {p.name for p in folder.iterdir() if p.suffix == ".py"}
        assert files == VENUE_FILES, f"{folder.name}: {sorted(files ^ VENUE_FILES)}"
        names.append(folder.name)
    assert "_template" in names
    assert sorted(n for n in names if n != "_template") == sorted(registry.venues())
    expected = {"sina", "qq", "qmt", "sim", "replay", "paper", "mail", "easytrader"}
    assert set(registry.venues()) == expected


@pytest.mark.parametrize("name", sorted(registry.VENUES))
def test_the_registry_table_matches_each_venues_record_and_files(name: str) -> None:
    venue = registry.venue(name)
    assert venue.name == name and venue.summary
    has_data, has_execution = registry.VENUES[name]
    for role, has, config, why in (
        ("data", has_data, venue.data_config, venue.no_data),
        ("execution", has_execution, venue.execution_config, venue.no_execution),
    ):
        factory = getattr(importlib.import_module(f"hkrt.adapters.{name}.{role}"), f"make_{role}_client")
        if has:
            assert callable(factory) and dataclasses.is_dataclass(config), (name, role)
        else:  # said explicitly: no factory, no config, and why
            assert factory is None and config is None and why, (name, role)


def test_the_template_is_a_complete_venue_that_the_registry_does_not_list() -> None:
    template = importlib.import_module("hkrt.adapters._template")
    assert template.VENUE.name == "template" and "template" not in registry.VENUES
    config = build_config(template.VENUE.data_config, {"base_url": "http://127.0.0.1:1"}, "the template source")
    assert config.base_url == "http://127.0.0.1:1"
    with pytest.raises(NotImplementedError, match="copy"):
        importlib.import_module("hkrt.adapters._template.data").make_data_client(config)


def test_unknown_venues_and_missing_roles_are_one_line() -> None:
    with pytest.raises(VenueConfigError, match=r"^unknown venue 'ib': expected one of sim, replay, qq") as err:
        registry.data_client("ib")
    assert "\n" not in str(err.value)
    with pytest.raises(
        VenueConfigError, match=r"^sina is no broker: Sina publishes .* \(brokers: qmt, paper, mail, easytrader\)$"
    ):
        registry.execution_client("sina")
    with pytest.raises(VenueConfigError, match=r"^mail is no source: .* \(sources: sim, replay, qq, sina, qmt\)"):
        registry.data_client("mail")
    assert registry.canonical("test") == "paper" and "test" in registry.execution_venues(aliases=True)


@pytest.mark.parametrize(
    ("name", "role", "settings", "message"),
    [
        ("mail", "execution", {"to": "a@b.c"}, "the mail broker needs host"),
        ("mail", "execution", {"host": "h", "to": "a@b.c", "pasword": "x"}, "unknown setting pasword (it takes"),
        ("mail", "execution", {"host": "h", "to": "a@b.c", "timeout": "soon"}, "timeout must be float, not 'soon'"),
        ("mail", "execution", {"host": "h", "to": "a@b.c", "security": "tls"}, "security must be one of ssl"),
        ("paper", "execution", {"cash": "-5"}, "cash must be a finite amount of yuan"),
        ("easytrader", "execution", {"host": "h", "client": "ths", "port": "0"}, "port must be 1..65535"),
        ("qmt", "execution", {"path": "C:/QMT", "account": "1", "account_type": "FUTURE"}, "account_type must be"),
        ("qmt", "data", {"mode": "poll"}, "mode must be push or pull, not 'poll'"),
        ("sim", "data", {"speed": "0"}, "speed must be positive (0 only for replay)"),
        ("sim", "data", {"symbols": "many"}, "symbols must be int, not 'many'"),
        ("replay", "data", {"path": "x.journal", "speed": "-1"}, "speed must be 0"),
        ("sina", "data", {"batch_size": "lots"}, "batch_size must be int"),
    ],
)
def test_a_bad_config_fails_with_one_line_naming_the_setting(
    name: str, role: str, settings: dict, message: str
) -> None:
    make = registry.data_config if role == "data" else registry.execution_config
    with pytest.raises(VenueConfigError) as err:
        make(name, settings)
    text = str(err.value)
    assert message in text and "\n" not in text, text
    assert text.startswith(f"the {name} {'source' if role == 'data' else 'broker'}"), text


def test_configs_come_from_strings_as_the_environment_and_toml_give_them() -> None:
    mail = registry.execution_config("mail", {"host": "h", "to": "a@b.c", "port": "2525", "allow_insecure": "yes"})
    assert (mail.port, mail.allow_insecure, mail.security) == (2525, True, "ssl")
    assert "password" not in repr(registry.execution_config("mail", {"host": "h", "to": "a@b.c", "password": "pw"}))
    sim = registry.data_config("sim", {"day": "2026-11-20", "symbols": "12", "speed": "50"})
    assert (sim.day, sim.symbols, sim.speed) == (dt.date(2026, 11, 20), 12, 50.0)
    replay = registry.data_config("replay", {"path": "day.journal"})
    assert replay.path == Path("day.journal") and replay.speed == 1.0
    same = registry.data_config("sim", sim, speed=2.0)  # an instance, with a field replaced
    assert (same.symbols, same.speed) == (12, 2.0)


def test_the_paper_execution_client_takes_one_order_request_end_to_end() -> None:
    broker = registry.execution_client("test", {"cash": 10_000, "fills": "instant"})
    assert isinstance(broker, OrderBrokerBase) and broker.name == "TestOrderBroker"
    request = OrderRequest(T0, "SH", "600000", 10.0, 500, stoploss=9.0, goal_price=12.0, remark="r")
    bought = broker.submit(OrderSide.Buy, request)
    assert bought.status == OrderStatus.Filled
    assert broker.records[0].request == request and broker.cash == pytest.approx(5_000.0)
    position = broker.positions[("SH", "600000")]
    assert (position.number, position.stoploss, position.goal_price) == (500, 9.0, 12.0)
    too_much = OrderRequest(T0, "SH", "600000", 10.0, 600)
    assert broker.submit(OrderSide.Sell, too_much).status == OrderStatus.Rejected
    assert json.loads(broker.get_asset_info())["cash"] == pytest.approx(5_000.0)


def test_a_subclass_hook_gets_the_request_and_a_nine_argument_hook_still_works() -> None:
    class New(OrderBrokerBase):
        def __init__(self) -> None:
            super().__init__("new")
            self.got: list[OrderRequest] = []

        def _buy(self, request: OrderRequest) -> str:
            self.got.append(request)
            return "N1"

        def _sell(self, request: OrderRequest) -> None:
            self.got.append(request)

        def _get_asset_info(self) -> str:
            return ""

    class Old(OrderBrokerBase):
        def _buy(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
            return f"{market}{code}:{num:g}@{price:g}:{stoploss:g}:{remark}"

        def _sell(self, *args):
            return f"args{len(args)}"

        def _get_asset_info(self) -> str:
            return ""

    request = OrderRequest(T0, "SZ", "000001", 8.5, 200, 8.0, 0.0, 1, "why")
    new = New()
    assert new.submit(OrderSide.Buy, request).order_id == "N1" and new.got == [request]
    assert new.sell(T0, "SZ", "000001", 8.5, 100).ok and new.got[1].num == 100
    old = Old()
    assert old.submit(OrderSide.Buy, request).order_id == "SZ000001:200@8.5:8:why"
    assert old.submit(OrderSide.Sell, request).order_id == "args9"


def test_the_spot_server_loop_serves_a_venue_it_builds_by_name(tmp_path: Path) -> None:
    """sim through the registry, as ``hkrt spot-server --source sim`` runs it: one data client's serve."""
    from hkrt.core.calendar import TradingCalendar
    from hkrt.feed.server import Phase, PullSchedule, SpotServer

    class Publisher:  # records what the server publishes; the real transport is covered in test_spot_server
        changes_only = False
        last_market_time = None

        def __init__(self) -> None:
            self.cycles: list[int] = []
            self.ended: list[dt.datetime] = []

        def publish(self, spots, market_time=None) -> None:
            self.cycles.append(len(spots["symbol"]))

        def end_day(self, market_time: dt.datetime) -> None:
            self.ended.append(market_time)

    calendar = TradingCalendar.china()
    said: list[str] = []
    plan = ServePlan([], PullSchedule([Phase.parse("09:15-11:31")], calendar), 3.0, calendar, dt.date(2026, 11, 22),
                     said.append)  # fmt: skip
    client = registry.data_client("sim", {"symbols": 4, "interval": 3600, "speed": 1e9})
    publisher = Publisher()
    client.serve(SpotServer(publisher, sleep=lambda s: None), plan)  # type: ignore[arg-type]
    assert said == ["simulated market: 4 symbols, 2026-11-20, 1e+09x real time"]  # Sunday 22nd: Friday's day
    assert publisher.cycles and set(publisher.cycles) == {4}
    assert [t.date() for t in publisher.ended] == [dt.date(2026, 11, 20)]


def modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport json, sys\nprint('MODULES:' + json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("MODULES:")][-1]
    return set(json.loads(line[len("MODULES:") :]))


@pytest.mark.parametrize("name", sorted(registry.VENUES))
def test_importing_one_venue_loads_no_other_venue(name: str) -> None:
    loaded = modules_after(
        f"""
        import hkrt.adapters.{name}, hkrt.adapters.{name}.config, hkrt.adapters.{name}.mapping
        import hkrt.adapters.{name}.data, hkrt.adapters.{name}.execution
        """
    )
    others = {m for m in loaded if m.startswith("hkrt.adapters.") and m.split(".")[2] in registry.VENUES}
    assert {m.split(".")[2] for m in others} == {name}, sorted(others)
    if name in ("qmt", "paper", "sim", "replay", "easytrader"):
        assert not loaded & {"httpx", "httpcore", "hkrt.fetcher.base"}, name  # QMT's clients load no HTTP library
    if name != "mail":
        assert "smtplib" not in loaded, name


def test_hkrt_and_the_registry_load_no_venue() -> None:
    loaded = modules_after("import hkrt, hkrt.adapters.registry\nhkrt.adapters.registry.data_venues()")
    assert not {m for m in loaded if m.startswith("hkrt.adapters.") and m.split(".")[2] in registry.VENUES}


def test_strategy_order_hands_every_broker_the_same_one_request() -> None:
    """Strategy.order -> one OrderRequest -> submit on each broker: a request-style hook, the paper broker
    and a hikyuu 3-argument object behind crtOB all see the same order."""
    import hkrt

    class Hook(OrderBrokerBase):
        def __init__(self) -> None:
            super().__init__("hook")
            self.got: list[OrderRequest] = []

        def _buy(self, request: OrderRequest) -> str:
            self.got.append(request)
            return "H1"

        def _sell(self, request: OrderRequest) -> None:
            self.got.append(request)

        def _get_asset_info(self) -> str:
            return ""

    class Short:  # hikyuu's first broker form: buy(code, price, num)
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def buy(self, code: str, price: float, num: float) -> None:
            self.calls.append((code, price, num))

        def sell(self, code: str, price: float, num: float) -> None:
            self.calls.append((code, price, num))

    hook, short = Hook(), Short()
    paper = registry.execution_client("paper", {"cash": 1_000_000})
    strategy = hkrt.Strategy(["SH600000"], brokers=[hook, paper, short], cash=1_000_000)
    ticket = strategy.order("SH600000", 250, price=10.0, stoploss=9.0, remark="why")
    assert ticket.ok and ticket.shares == 200  # rounded to lots before any broker sees it
    [request] = hook.got
    assert (request.symbol, request.price, request.num, request.stoploss, request.remark) == (
        "SH600000", 10.0, 200.0, 9.0, "why",
    )  # fmt: skip
    assert paper.records[0].request == request and strategy.brokers[2].records[0].request == request
    assert short.calls == [("SH600000", 10.0, 200.0)]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--source", "sim", "--base-url", "http://127.0.0.1:1"], "Invalid value for --base-url: does not apply to"),
        (["--source", "qq", "--qmt-mode", "pull"], "Invalid value for --qmt-mode: does not apply to --source qq"),
        (["--source", "sim", "--speed", "0"], "the sim source: speed must be positive (0 only for replay), not 0"),
        (["--source", "sim", "--symbols", "0"], "the sim source: symbols must be at least 1, not 0"),
        (["--source", "replay"], "--source replay needs --replay FILE"),
    ],
)
def test_spot_server_flags_become_the_venues_config_and_a_bad_one_is_one_line(
    args: list[str], line: str, tmp_path: Path
) -> None:
    import logging

    from click.testing import CliRunner

    from hkrt.cli import main

    logger = logging.getLogger("hkrt")  # the command configures logging: put it back as it was
    handlers, level = logger.handlers[:], logger.level
    try:
        result = CliRunner().invoke(main, ["spot-server", *args, "--address", f"ipc://{tmp_path / 'feed.ipc'}"])
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
    assert result.exit_code == 2, result.output
    errors = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and line in errors[0], result.output
    assert not (tmp_path / "feed.ipc").exists()  # refused before listening
