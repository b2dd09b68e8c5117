"""``import hkrt`` and ``hkrt --help`` load no venue, HTTP, SMTP, TLS, Parquet or socket module; each
public name still resolves and, when touched, loads what it needs (docs/architecture.md, "Import
cost and portability").  Every check runs in a fresh interpreter: this process has long since
imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hkrt

ROOT = Path(__file__).resolve().parents[1]

# never loaded by `import hkrt` or `hkrt --help`
HEAVY = frozenset(
    {
        "smtplib",
        "ssl",
        "email",
        "http.client",
        "httpx",
        "httpcore",
        "requests",
        "pyarrow",
        "pandas",
        "pynng",
        "asyncio",
        "xtquant",
        "easytrader",
        "aiosmtpd",
        "matplotlib",
        "prometheus_client",  # hkrt.ops (metrics): loaded by --metrics or hkrt.ops.serve_metrics only
        "redis",  # the Redis Streams bus loads its client on first use (hkrt.feed.redis_url.connect)
        "fastapi",  # hkrt.dashboard: loaded by --dashboard or hkrt.dashboard.serve_dashboard only
        "uvicorn",
        "starlette",
    }
)
# hkrt's own modules that pull the heavy ones in
HEAVY_HKRT = frozenset(
    {"hkrt.agent", "hkrt.store", "hkrt.feed.transport", "hkrt.feed.wire", "hkrt.fetcher.base", "hkrt.broker.mail"}
    | {f"hkrt.adapters.{venue}" for venue in ("sina", "qq", "qmt", "sim", "replay", "paper", "mail", "easytrader")}
    | {"hkrt.ops.serve", "hkrt.ops.metrics"}
    | {"hkrt.dashboard.app", "hkrt.dashboard.hub"}
)
SOCKETS_AND_TLS = frozenset({"pynng", "ssl", "asyncio"})
HTTP_AND_MAIL = frozenset({"smtplib", "email", "httpx", "httpcore", "requests", "xtquant", "easytrader"})
MARK = "MODULES:"


def modules_after(code: str) -> set[str]:
    """The names in sys.modules once ``code`` has run in a new interpreter (raising on failure)."""
    report = f"import json as _j, sys as _s\nprint({MARK!r} + _j.dumps(sorted(_s.modules)))"
    script = textwrap.dedent(code) + "\n" + report + "\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith(MARK)][-1]
    return set(json.loads(line[len(MARK) :]))


def test_import_hkrt_loads_no_heavy_module() -> None:
    loaded = modules_after("import hkrt")
    assert {"hkrt", "hkrt._hkrt", "hkrt.core.ktype"} <= loaded
    assert not loaded & HEAVY, f"import hkrt loaded {sorted(loaded & HEAVY)}"
    assert not loaded & HEAVY_HKRT


def test_the_check_sees_a_heavy_module_when_one_is_loaded() -> None:
    # the helper above must not pass by missing modules: the same check after a Parquet import
    loaded = modules_after("import hkrt\nimport pyarrow.parquet")
    assert {"pyarrow", "pyarrow.parquet"} <= loaded


def test_hkrt_help_and_every_command_help_load_no_heavy_module() -> None:
    # what the `hkrt` console script runs (hkrt.cli:main), one --help after another, then sys.modules
    loaded = modules_after(
        """
        import click
        from hkrt.cli import main
        for args in (["--help"], ["spot-server", "--help"], ["agent", "--help"], ["run", "--help"],
                     ["demo", "--help"], ["export", "--help"]):
            try:
                main.main(args, prog_name="hkrt")
            except SystemExit as exit_:
                assert exit_.code == 0, (args, exit_.code)
        """
    )
    assert "click" in loaded and "hkrt.cli" in loaded
    assert not loaded & HEAVY, f"hkrt --help loaded {sorted(loaded & HEAVY)}"
    assert not loaded & HEAVY_HKRT


def test_every_public_name_resolves_to_the_object_it_always_was() -> None:
    for name in hkrt.__all__:
        assert getattr(hkrt, name) is not None
    assert set(hkrt.__all__) <= set(dir(hkrt))
    from hkrt import KDataStore, OrderTicket, Strategy, TestOrderBroker, crtOB, load_kdata  # noqa: F401

    assert hkrt.KDataStore is hkrt.store.KDataStore and hkrt.load_kdata is hkrt.store.load_kdata
    assert hkrt.Strategy is hkrt.strategy.Strategy is hkrt.strategy.strategy.Strategy
    assert hkrt.crtOB is hkrt.broker.crtOB and hkrt.TestOrderBroker is hkrt.broker.TestOrderBroker
    assert hkrt.OrderBrokerBase is hkrt.broker.OrderBrokerBase is hkrt._hkrt.OrderBrokerBase
    assert hkrt.SpotAgent is hkrt.agent.spot_agent.SpotAgent
    assert hkrt.Bar is hkrt.hooks.Bar and hkrt.TradingCalendar is hkrt.core.calendar.TradingCalendar
    with pytest.raises(AttributeError, match="no attribute 'KDataStor'"):
        _ = hkrt.KDataStor


def test_the_wire_codec_left_the_top_level_and_its_old_names_still_work_with_a_warning() -> None:
    moved = ("WireError", "WireHeader", "decode_columns", "decode_header", "decode_spots", "encode_spots")
    assert not set(moved) & set(hkrt.__all__) and not set(moved) & set(dir(hkrt))
    for name in moved:
        with pytest.warns(DeprecationWarning, match=f"hkrt.{name} moved to hkrt.wire.{name}"):
            assert getattr(hkrt, name) is getattr(hkrt.wire, name)
    with pytest.warns(DeprecationWarning):  # every use warns, not only the first
        _ = hkrt.encode_spots


def test_star_import_and_submodule_attributes_work_after_a_bare_import() -> None:
    loaded = modules_after(
        """
        import hkrt
        names = {}
        exec("from hkrt import *", names)
        assert set(hkrt.__all__) <= set(names), set(hkrt.__all__) - set(names)
        # submodules as attributes, as when __init__ imported them all
        assert hkrt.fetcher.get_spot and hkrt.fetcher.qmt.QmtClient and hkrt.fetcher.HTTP_SOURCES["qq"]
        assert hkrt.store.pq.write_table and hkrt.strategy.broker_config.BROKERS
        assert hkrt.strategy.run_sim and hkrt.feed.journal.read_journal and hkrt.core.synthetic.synthetic_day
        """
    )
    assert {"hkrt.agent", "hkrt.store", "hkrt.adapters.qq.data", "pyarrow.parquet"} <= loaded


def test_a_store_loads_pandas_and_parquet_when_used_and_nothing_of_http_mail_or_sockets(tmp_path: Path) -> None:
    loaded = modules_after(
        f"""
        import sys
        import hkrt
        store = hkrt.KDataStore({str(tmp_path / "store")!r})
        assert "pandas" in sys.modules and "pyarrow.parquet" not in sys.modules  # Parquet waits for I/O
        import pandas as pd
        bars = pd.DataFrame({{"symbol": ["SH600000"], "datetime": [pd.Timestamp("2026-11-20 09:31")],
                             "open": [10.0], "high": [10.2], "low": [10.0], "close": [10.1],
                             "volume": [300.0], "amount": [3030.0]}})
        assert store.write(bars, "MIN") == 1
        assert store.load("SH600000", "MIN")["close"].tolist() == [10.1]
        """
    )
    assert {"hkrt.store", "pandas", "pyarrow", "pyarrow.parquet"} <= loaded
    assert not loaded & (HTTP_AND_MAIL | {"pynng"}), sorted(loaded & (HTTP_AND_MAIL | {"pynng"}))


def test_the_qmt_source_and_broker_and_the_test_broker_load_no_http_or_mail() -> None:
    # QMT runs on Windows machines that may lack nothing but should carry nothing either: its
    # source and broker share code with the HTTP fetchers only through hkrt.fetcher.common
    loaded = modules_after("import hkrt.fetcher.qmt, hkrt.broker.qmt\nimport hkrt\nhkrt.TestOrderBroker, hkrt.crtOB")
    assert {"hkrt.fetcher.qmt", "hkrt.broker.qmt", "hkrt.fetcher.common", "hkrt.broker.paper"} <= loaded
    assert not loaded & HTTP_AND_MAIL, sorted(loaded & HTTP_AND_MAIL)
    assert "hkrt.fetcher.base" not in loaded and "hkrt.broker.mail" not in loaded
    # and an HTTP client still gets its HTTP library the moment one is made
    assert {"httpx", "hkrt.fetcher.base"} <= modules_after("import hkrt.fetcher\nhkrt.fetcher.make_client('qq')")


def test_strategy_loads_the_agent_and_pandas_but_no_mail_or_http_module() -> None:
    loaded = modules_after("import hkrt\nhkrt.Strategy")
    assert {"hkrt.strategy.strategy", "hkrt.agent", "pandas"} <= loaded
    assert not loaded & HTTP_AND_MAIL, sorted(loaded & HTTP_AND_MAIL)


IN_PROCESS_AGENT = """
    import datetime as dt
    import hkrt
    agent = hkrt.SpotAgent(["MIN"])
    day = dt.date(2026, 11, 20)
    for hhmmss, close, volume in (("09:30:05", 10.0, 100), ("09:30:40", 10.2, 300), ("09:31:10", 10.1, 400)):
        when = dt.datetime.combine(day, dt.time.fromisoformat(hhmmss))
        agent.ingest(hkrt.Spot("SH600000", when, open=10.0, high=10.2, low=10.0, close=close,
                               volume=volume, amount=volume * 10.0))
    assert agent.kdata("SH600000", "MIN")["volume"].tolist() == [300.0, 100.0]
    hkrt.Strategy
"""


def test_an_agent_fed_in_process_and_a_strategy_load_no_socket_or_tls_module() -> None:
    loaded = modules_after(IN_PROCESS_AGENT)
    assert not loaded & SOCKETS_AND_TLS, sorted(loaded & SOCKETS_AND_TLS)


def test_an_agent_fed_in_process_loads_no_http_or_mail_module_today() -> None:
    loaded = modules_after(IN_PROCESS_AGENT)
    assert "hkrt.agent" in loaded and not loaded & HTTP_AND_MAIL, sorted(loaded & HTTP_AND_MAIL)
