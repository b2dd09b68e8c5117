"""The errors a newcomer meets first: each one a clear message, never a traceback.

In Python each is a precise exception type whose text says what is wrong and what is accepted;
on the command line each is one ``Error: ...`` line and a non-zero exit status (no traceback).
The cases: QMT on Linux (xtquant's native part is Windows-only), a port or ipc address already
taken, no network (a closed loopback port, never the internet), a bad code (also as
``hkrt agent --symbol``), a malformed address, a wrong ktype.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hkrt
import hkrt.fetcher as hf
from hkrt.core.logs import record_fields

ROOT = Path(__file__).resolve().parents[1]
VALID_KTYPES = "MIN, MIN3, MIN5, MIN15, MIN30, MIN60, HOUR2, DAY, WEEK, MONTH, QUARTER, HALFYEAR, YEAR"
SPELLINGS = "SH600000, sh600000 or 600000.SH"

# `hkrt ...` as a subprocess.  xtquant's __init__ asks pypi.org for updates through `requests`;
# blocking that import keeps these tests off the network (hkrt itself uses httpx).
LAUNCH = "import sys; sys.modules['requests'] = None\nfrom hkrt.cli import main\nmain(prog_name='hkrt')"
# The same, with the spot server's China wall clock fixed inside a trading phase (Friday 10:00),
# so a pull source collects whatever day and hour the tests run on.
LAUNCH_IN_SESSION = (
    "import datetime as dt, hkrt.feed.server as s\n"
    "s.SpotServer.run_pull.__kwdefaults__['clock'] = lambda: dt.datetime(2026, 11, 20, 10, 0)\n" + LAUNCH
)


def hkrt_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LAUNCH, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, **(env or {})})  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str, status: int | None = None) -> str:
    """A non-zero exit, no traceback, and an ``Error:`` line holding every needle; returns that line."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    if status is not None:
        assert result.returncode == status, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ipc(tmp_path: Path, name: str = "spot") -> str:
    return f"ipc://{tmp_path / name}.ipc"


def wait_for_text(path: Path, text: str, proc: subprocess.Popen[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared: {path.read_text(errors='replace') if path.exists() else ''}")


def needs_xtquant() -> None:
    import importlib.util

    if importlib.util.find_spec("xtquant") is None:
        pytest.skip("the xtquant wheel (test extra) shows what Linux really gives")


# ------------------------------------------------------------------ QMT on Linux
def _assert_qmt_text(message: str, *, trading: bool = False) -> None:
    assert "Windows-only" in message
    assert "QMT / miniQMT" in message  # what to do instead: run on Windows ...
    if trading:  # ... or trade from Linux through easytrader's server on the Windows machine
        assert "--broker easytrader" in message and "docs/broker-easytrader.md" in message
    else:  # ... or publish from Windows over TCP to hkrt on Linux
        assert "hkrt spot-server --source qmt --tcp" in message and "hkrt agent --tcp" in message


@pytest.mark.skipif(sys.platform == "win32", reason="xtquant's native part loads on Windows")
def test_qmt_in_python_is_an_import_error_saying_windows() -> None:
    needs_xtquant()
    code = (
        "import sys; sys.modules['requests'] = None\n"
        "import hkrt.fetcher as hf\n"
        "from hkrt.fetcher.qmt import QmtClient, QmtPushClient, QmtUnavailableError\n"
        "from hkrt.broker.qmt import XtQuantOrderBroker, QmtTradingUnavailableError\n"
        "calls = [lambda: hf.get_spot(['SH600000'], source='qmt'), QmtClient,\n"
        "         lambda: QmtPushClient(None, lambda spots: None),\n"
        "         lambda: XtQuantOrderBroker('C:/QMT/userdata_mini', account_id='8880000000')]\n"
        "for call in calls:\n"
        "    try:\n        call()\n    except ImportError as e:\n"
        "        print(type(e).__name__, '|', str(e).replace(chr(10), ' '))\n"
        "    else:\n        print('no error')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if " | " in line]
    assert len(lines) == 4, out.stdout + out.stderr
    kinds = [line.split(" | ")[0] for line in lines]
    assert kinds == ["QmtUnavailableError"] * 3 + ["QmtTradingUnavailableError"]
    for line in lines:
        _assert_qmt_text(line, trading=line.startswith("QmtTrading"))
    assert "Traceback" not in out.stderr


def test_qmt_error_types_are_import_errors() -> None:
    from hkrt.broker.qmt import QmtTradingUnavailableError
    from hkrt.fetcher.qmt import QmtUnavailableError

    assert issubclass(QmtUnavailableError, ImportError)
    assert issubclass(QmtTradingUnavailableError, ImportError)


@pytest.mark.skipif(sys.platform == "win32", reason="xtquant's native part loads on Windows")
@pytest.mark.parametrize("mode", ["push", "pull"])
def test_spot_server_qmt_on_linux_is_one_line(mode: str, tmp_path: Path) -> None:
    needs_xtquant()
    result = hkrt_cli("spot-server", "--source", "qmt", "--qmt-mode", mode, "--codes", "SH600000",
                      "--address", ipc(tmp_path))  # fmt: skip
    _assert_qmt_text(assert_one_line_error(result, "QMT source needs xtquant", status=1))


@pytest.mark.skipif(sys.platform == "win32", reason="xtquant's native part loads on Windows")
def test_run_with_the_qmt_broker_on_linux_is_one_line(tmp_path: Path) -> None:
    needs_xtquant()
    env = {"HKRT_QMT_PATH": "C:/QMT/userdata_mini", "HKRT_QMT_ACCOUNT": "8880000000"}
    result = hkrt_cli("run", "examples/ma_cross.py", "--source", "sim", "--broker", "qmt", env=env)
    _assert_qmt_text(assert_one_line_error(result, "QMT trading needs xtquant", status=1), trading=True)


# ------------------------------------------------------------------ a port or address in use
def test_spot_server_tcp_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = hkrt_cli("spot-server", "--tcp", str(port), "--address", ipc(tmp_path))
        assert_one_line_error(result, f"tcp://127.0.0.1:{port}", "address already in use", status=1)
        named = hkrt_cli("spot-server", "--tcp", f"127.0.0.1:{port}", "--address", ipc(tmp_path, "other"))
        assert_one_line_error(named, "address already in use", status=1)


def test_spot_server_ipc_address_served_by_another_spot_server(tmp_path: Path) -> None:
    address = ipc(tmp_path)
    log = tmp_path / "first.out"
    with log.open("w") as out:
        first = subprocess.Popen([sys.executable, "-c", LAUNCH, "spot-server", "--source", "sim", "--symbols", "5",
                                  "--address", address], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
    try:
        wait_for_text(log, "spot-server: source sim, on", first)
        second = hkrt_cli("spot-server", "--address", address)
        assert_one_line_error(second, address, "address already in use", "another spot server", status=1)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 143, log.read_text()  # 128 + SIGTERM
    assert "Traceback" not in log.read_text()


def test_second_publisher_in_python_is_an_os_error(tmp_path: Path) -> None:
    from hkrt.feed.transport import SpotPublisher

    address = ipc(tmp_path)
    with SpotPublisher(address), pytest.raises(OSError, match="address already in use"):
        SpotPublisher(address)


# ------------------------------------------------------------------ no network
@pytest.mark.parametrize("source", ["qq", "sina"])
def test_no_network_is_a_report_not_an_exception(source: str, caplog: pytest.LogCaptureFixture) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    report = hf.fetch(["SH600000", "SH12345"], source=source, base_url=base_url, retries=1, backoff=0.01)
    assert not report.ok and report.spots == []
    assert len(report.failed_batches) == 1
    failed = report.failed_batches[0]
    assert failed.codes == ("SH600000",) and failed.attempts == 2
    assert failed.error.startswith("connection error") and "refused" in failed.error.lower()
    assert report.invalid == ["SH12345"]  # never sent
    assert "1 failed" in report.summary()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hkrt.fetcher"):
        assert hf.get_spot(["SH600000"], source=source, base_url=base_url, retries=0) == []
    records = [r for r in caplog.records if r.getMessage().startswith("quote batch failed: connect from ")]
    assert len(records) == 1
    fields = record_fields(records[0])
    assert fields["source"] == source and fields["codes"] == 1
    assert fields["error"].startswith("connection error")


def test_spot_server_without_network_keeps_running_and_counts_failed_batches(tmp_path: Path) -> None:
    out_path, err_path = tmp_path / "server.out", tmp_path / "server.err"
    args = ["spot-server", "--source", "qq", "--base-url", f"http://127.0.0.1:{closed_port()}",
            "--codes", "SH600000,sz000001", "--interval", "0.5", "--address", ipc(tmp_path)]  # fmt: skip
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH_IN_SESSION, *args], stdout=out, stderr=err, cwd=ROOT)
    try:
        wait_for_text(out_path, "failed batches 2", proc)  # two cycles, each with its one batch failed
        assert proc.poll() is None  # still running
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
    out, err = out_path.read_text(), err_path.read_text()
    assert status == 143, out + err  # 128 + SIGTERM
    assert "stopped" in out
    assert "Traceback" not in out + err
    assert "quote batch failed" in err and "connection error" in err and "source=qq" in err


# ------------------------------------------------------------------ a bad code
@pytest.mark.parametrize("bad", ["SH12345", "SH6000001", "XX600000", "600000", "hk00700"])
def test_bad_code_in_python_names_the_code_and_the_spellings(bad: str) -> None:
    with pytest.raises(ValueError) as error:
        hkrt.normalize_symbol(bad)
    assert str(error.value) == (
        f"invalid symbol {bad!r}: expected a market SH/SZ/BJ and a six-digit code, written {SPELLINGS}"
    )


def test_bad_code_in_spot_agent_and_strategy() -> None:
    with pytest.raises(ValueError, match=f"invalid symbol 'XX600000'.*{SPELLINGS}"):
        hkrt.Spot("XX600000", dt.datetime(2026, 11, 20, 10, 0), close=10.0)
    with pytest.raises(ValueError, match="invalid symbol 'SH12345'"):
        hkrt.SpotAgent().kdata("SH12345", "MIN")
    with pytest.raises(ValueError, match=f"invalid symbol 'SH6000001'.*{SPELLINGS}"):
        hkrt.Strategy(["SH6000001"])


def test_run_with_a_strategy_on_a_bad_code(tmp_path: Path) -> None:
    script = tmp_path / "bad_code.py"
    script.write_text("import hkrt\nstrategy = hkrt.Strategy(['SH600000', 'SH6000001'])\n")
    result = hkrt_cli("run", str(script), "--source", "sim")
    assert_one_line_error(result, "'SH6000001'", SPELLINGS, status=1)


@pytest.mark.parametrize("bad", ["SH12345", "XX600000"])
def test_agent_bad_symbol_is_one_line(bad: str, tmp_path: Path) -> None:
    result = hkrt_cli("agent", "--symbol", bad, "--address", ipc(tmp_path), "--seconds", "1")
    assert_one_line_error(result, "--symbol", f"invalid symbol {bad!r}", SPELLINGS, status=2)
    assert "agent: subscribing" not in result.stdout  # refused before it started


def test_agent_bad_address_is_one_line(tmp_path: Path) -> None:
    result = hkrt_cli("agent", "--address", "ipc://", "--seconds", "1")  # nng cannot parse it
    assert_one_line_error(result, "--address", "cannot dial 'ipc://'", "ipc://PATH or tcp://HOST:PORT", status=2)
    result = hkrt_cli("agent", "--tcp", "localhost:http", "--seconds", "1")
    assert_one_line_error(result, "--tcp", "invalid TCP address 'localhost:http'", status=2)
    result = hkrt_cli("agent", "--address", "nowhere", "--seconds", "1")  # refused before dialling
    assert_one_line_error(result, "nowhere")


@pytest.mark.parametrize("source", ["qq", "sim"])
def test_spot_server_bad_code(source: str, tmp_path: Path) -> None:
    result = hkrt_cli("spot-server", "--source", source, "--codes", "SH600000,SH6000001", "--address", ipc(tmp_path))
    assert_one_line_error(result, "--codes", "'SH6000001'", SPELLINGS, status=2)


def test_spot_server_codes_with_a_source_that_ignores_them(tmp_path: Path) -> None:
    result = hkrt_cli("spot-server", "--source", "sim", "--codes", "SH600000", "--address", ipc(tmp_path))
    assert_one_line_error(result, "--codes", "pull sources (qq, sina, qmt)", status=2)


# ------------------------------------------------------------------ a wrong ktype
def test_wrong_ktype_in_python_lists_the_valid_names() -> None:
    expected = f"unknown ktype 'MIN7'; valid ktypes (any case): {VALID_KTYPES}"
    with pytest.raises(ValueError) as error:
        hkrt.KType.parse("MIN7")
    assert str(error.value) == expected
    with pytest.raises(ValueError, match=f"unknown ktype 'M5'; valid ktypes \\(any case\\): {VALID_KTYPES}"):
        hkrt.SpotAgent().kdata("SH600000", "M5")
    with pytest.raises(ValueError, match=r"ktype DAY is not enabled in this agent \(enabled: MIN\)"):
        hkrt.SpotAgent(["MIN"]).kdata("SH600000", "DAY")
    with pytest.raises(ValueError, match="unknown ktype 'MIN7'"):
        hkrt.SpotAgent(["MIN7"])
    with pytest.raises(ValueError, match="unknown ktype 'MIN7'"):
        hkrt.Strategy(["SH600000"], ktypes=["MIN7"])


def test_wrong_ktype_on_the_command_line(tmp_path: Path) -> None:
    agent = hkrt_cli("agent", "--ktype", "MIN7", "--address", ipc(tmp_path), "--seconds", "1")
    assert_one_line_error(agent, "--ktype", "unknown ktype 'MIN7'", VALID_KTYPES, status=2)
    export = hkrt_cli("export", "--ktype", "X", "--store", str(tmp_path), "--out", str(tmp_path / "x.csv"))
    assert_one_line_error(export, "--ktype", "unknown ktype 'X'", VALID_KTYPES, status=2)
    script = tmp_path / "bad_ktype.py"
    script.write_text("import hkrt\nstrategy = hkrt.Strategy(['SH600000'], ktypes=['MIN7'])\n")
    run = hkrt_cli("run", str(script), "--source", "sim")
    assert_one_line_error(run, "unknown ktype 'MIN7'", VALID_KTYPES, status=1)
