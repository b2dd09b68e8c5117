"""Hostile HTTP quote servers and partial answers, over real loopback sockets.

Each test here fails on a fetcher whose request has no whole-request deadline (httpx's timeout
is per read: a one-byte-a-second answer never times out), no body cap, no reason per failure,
or a pull loop that drops a code after one incomplete answer and never asks again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import logging
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import hkrt
from hkrt import fetcher
from hkrt.core.calendar import TradingCalendar
from hkrt.fetcher import PullSession, QQClient, SinaClient
from hkrt.fetcher.base import DEADLINE, TOO_LARGE, read_body
from hkrt.testing import QuoteServer

WHEN = dt.datetime(2026, 11, 20, 10, 15, 30)
FAST = {"rate_limit": 0, "backoff": 0.01, "backoff_max": 0.02, "retries": 0}
CAP = 256 * 1024
CHUNK = 64 * 1024  # the most one network read brings: the cap may be passed by one read, no more


def spot(symbol: str, close: float = 10.0) -> hkrt.Spot:
    return hkrt.Spot(
        symbol, WHEN, name="x", yesterday_close=close, open=close, high=close, low=close, close=close,
        volume=100_000, amount=round(100_000 * close), bid=[close - 0.01], bid_volume=[100], ask=[close],
        ask_volume=[200],
    )  # fmt: skip


MARKET = {s: spot(s, 10.0 + i) for i, s in enumerate(["SH600000", "SZ000001", "SH601318", "SZ300750", "SH688981"])}
CODES = list(MARKET)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[QuoteServer]:
    with QuoteServer(MARKET) as s:
        yield s


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "hkrt.fetcher"]


# ------------------------------------------------------------------ the whole-request deadline
@pytest.mark.parametrize("source", ["qq", "sina"])
def test_trickled_answer_is_cut_at_the_deadline_and_the_rest_of_the_cycle_arrives(
    server: QuoteServer, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.trickle(1.0, symbols=["SH600000"])  # one byte a second: each read is far inside `timeout`
    client = fetcher.make_client(source, base_url=server.url, batch_size=2, deadline=1.5, timeout=5.0, **FAST)
    started = time.monotonic()
    with client, caplog.at_level(logging.WARNING, logger="hkrt.fetcher"):
        report = client.fetch(CODES)
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 3.0  # cut at the deadline, not at the end of a 1,000-byte answer
    [failed] = report.failed_batches
    assert failed.reason == DEADLINE and failed.codes == ("SH600000", "SZ000001") and failed.status is None
    assert "deadline exceeded" in failed.error
    assert sorted(s.symbol for s in report.spots) == sorted(CODES[2:])  # the rest of the cycle delivered
    assert report.failures == {DEADLINE: 1} and "(deadline 1)" in report.summary()
    [record] = warnings_of(caplog)
    assert record.getMessage().startswith(f"quote batch failed: deadline from {source}, 2 codes, 1 attempt")
    assert (record.reason, record.source, record.codes) == (DEADLINE, source, 2)
    trickled = [r for r in server.requests if "sh600000" in r.tokens]
    assert 0 < trickled[0].sent < 5  # the server got one or two bytes out before the cut
    assert client.stats()["failures"] == {DEADLINE: 1} and client.stats()["deadline_enforced"]


def test_trickled_headers_are_cut_at_the_deadline_too(server: QuoteServer) -> None:
    server.trickle(0.5, headers=True)  # the status line itself arrives a byte at a time
    started = time.monotonic()
    report = fetcher.fetch(CODES[:2], "qq", base_url=server.url, deadline=1.0, timeout=5.0, **FAST)
    assert time.monotonic() - started < 2.5
    [failed] = report.failed_batches
    assert failed.reason == DEADLINE and report.spots == []


def test_without_the_backend_wrap_the_deadline_is_still_checked_between_reads(
    server: QuoteServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should a later httpx hide its network backend, the client says so and falls back to checking
    the deadline between body reads (each read still bounded by ``timeout``)."""
    import httpcore

    monkeypatch.setattr(httpcore, "NetworkBackend", type("Hidden", (), {}))
    server.trickle(0.2, symbols=["SH600000"])
    with caplog.at_level(logging.WARNING, logger="hkrt.fetcher"):
        client = QQClient(base_url=server.url, deadline=1.0, timeout=5.0, **FAST)
    assert "deadline is checked between reads only" in caplog.text
    started = time.monotonic()
    with client:
        report = client.fetch(CODES[:1])
        assert not client.stats()["deadline_enforced"]
    assert time.monotonic() - started < 2.0
    assert [f.reason for f in report.failed_batches] == [DEADLINE]


def test_each_attempt_has_its_own_deadline(server: QuoteServer) -> None:
    server.trickle(1.0)
    report = fetcher.fetch(CODES[:1], "sina", base_url=server.url, deadline=0.5, **{**FAST, "retries": 1})
    [failed] = report.failed_batches
    assert (failed.reason, failed.attempts, report.requests) == (DEADLINE, 2, 2)
    assert server.request_count() == 2


def test_a_slow_but_steady_answer_inside_the_deadline_is_read(server: QuoteServer) -> None:
    server.slow(0.3)  # a late answer, not a trickle: delivered
    report = fetcher.fetch(CODES, "qq", base_url=server.url, deadline=2.0, **FAST)
    assert report.ok and len(report.spots) == len(CODES)


# ------------------------------------------------------------------ the body cap
def test_endless_answer_is_cut_at_the_cap_with_bounded_memory(server: QuoteServer) -> None:
    server.endless = True
    client = QQClient(base_url=server.url, max_body_bytes=CAP, deadline=20.0, **FAST)
    tracemalloc.start()
    try:
        report = client.fetch(CODES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
    [failed] = report.failed_batches
    assert failed.reason == TOO_LARGE and "stopped reading" in failed.error and failed.attempts == 1
    received = client.stats()["bytes_received"]
    assert CAP < received <= CAP + CHUNK  # stopped at the first read past the cap
    assert peak < 8 * CAP  # the answer was never buffered beyond the cap (without it: unbounded)


def test_a_100_mb_content_length_is_refused_before_reading_the_body(server: QuoteServer) -> None:
    server.oversize = 100 * 1024 * 1024
    started = time.monotonic()
    with SinaClient(base_url=server.url, max_body_bytes=CAP, **FAST) as client:
        report = client.fetch(CODES)
        assert client.stats()["bytes_received"] == 0  # not one byte of the body read
    assert time.monotonic() - started < 2.0
    [failed] = report.failed_batches
    assert failed.reason == TOO_LARGE and "Content-Length 104,857,600" in failed.error and failed.status == 200


class _GzipBomb(BaseHTTPRequestHandler):
    """50 MB of blanks gzip-compressed to ~50 KB: small on the wire, huge once decoded."""

    protocol_version = "HTTP/1.1"
    body = gzip.compress(b" " * (50 * 1024 * 1024), compresslevel=9)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client hung up at the cap
            self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up at the cap is the point of the test, not an error to print


@pytest.fixture
def bomb() -> Iterator[str]:
    httpd = _QuietServer(("127.0.0.1", 0), _GzipBomb)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_gzip_bomb_is_cut_at_the_cap_on_the_decoded_size(bomb: str) -> None:
    assert len(_GzipBomb.body) < CAP  # the wire size alone would pass the cap
    with QQClient(base_url=bomb, max_body_bytes=CAP, **FAST) as client:
        tracemalloc.start()
        try:
            report = client.fetch(CODES[:1])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    [failed] = report.failed_batches
    assert failed.reason == TOO_LARGE
    assert peak < 8 * CAP  # never inflated past the cap (50 MB decoded otherwise)


def test_gzip_answers_are_decoded(server: QuoteServer) -> None:
    server.gzip = True
    report = fetcher.fetch(CODES, "sina", base_url=server.url, **FAST)
    assert report.ok and [s.symbol for s in report.spots] == CODES
    assert all(s == MARKET[s.symbol] for s in report.spots)


def test_read_body_refuses_an_unknown_encoding_and_a_corrupt_gzip() -> None:
    import httpx

    def response(encoding: str, content: bytes) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": encoding}, stream=httpx.ByteStream(content))

    with pytest.raises(fetcher.FetchError) as error:
        read_body(response("br", b"x"), CAP)
    assert error.value.reason == "decode" and not error.value.retryable
    with pytest.raises(fetcher.FetchError) as error:
        read_body(response("gzip", b"\x1f\x8b\x08\x00garbage"), CAP)
    assert error.value.reason == "decode"
    with pytest.raises(fetcher.FetchError) as error:
        read_body(response("gzip", gzip.compress(b"abc")[:-6]), CAP)  # the stream ends early
    assert error.value.reason == "decode"
    assert read_body(response("gzip", gzip.compress(b"abc")), CAP) == b"abc"


# ------------------------------------------------------------------ reasons and logs
@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda s: s.fail_next(1, status=503), "http_503"),
        (lambda s: s.fail_next(1, status=404), "http_404"),
        (lambda s: s.drop_next(1), "dropped"),
        (lambda s: setattr(s, "sys_auth_failed", True), "void_answer"),
        (lambda s: setattr(s, "oversize", 10 * CAP), "too_large"),
    ],
)
def test_every_failure_has_its_own_reason(server: QuoteServer, setup: object, reason: str) -> None:
    setup(server)  # type: ignore[operator]
    report = fetcher.fetch(CODES, "sina", base_url=server.url, max_body_bytes=CAP, **FAST)
    assert [f.reason for f in report.failed_batches] == [reason]


def test_connect_failure_reason_and_partial_reasons(server: QuoteServer) -> None:
    report = fetcher.fetch(CODES[:1], "qq", base_url=f"http://127.0.0.1:{closed_port()}", **FAST)
    assert [f.reason for f in report.failed_batches] == ["connect"]
    server.truncate = 30
    report = fetcher.fetch(CODES, "qq", base_url=server.url, **FAST)
    assert [f.reason for f in report.failed_batches] == ["truncated"]
    server.truncate = 0
    server.omit_next(["SZ000001"])
    report = fetcher.fetch(CODES, "sina", base_url=server.url, **FAST)  # Sina echoes every code
    assert [(f.reason, f.codes) for f in report.failed_batches] == [("missing", ("SZ000001",))]


def test_a_dead_source_cannot_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    with QQClient(base_url=base_url, log_every=0.5, **FAST) as client, caplog.at_level(logging.WARNING):
        for _ in range(5):
            assert client.fetch(CODES[:1]).failures == {"connect": 1}
        assert len(warnings_of(caplog)) == 1 and client.stats()["log_lines_held_back"] == 4
        time.sleep(0.55)
        client.fetch(CODES[:1])
    first, second = warnings_of(caplog)
    assert not hasattr(first, "suppressed")
    assert second.suppressed == 4 and "(4 more connect failures since the last such line)" in second.getMessage()
    assert client.stats()["failed_batches"] == 6 and client.stats()["failures"] == {"connect": 6}


def test_get_spot_offline_says_why_without_any_logging_setup() -> None:
    """A script that calls get_spot with no logging configured gets Python's last-resort handler,
    which prints the message only: the message itself must name the reason."""
    code = (
        "import hkrt.fetcher as f\n"
        f"print(f.get_spot(['SH600000'], base_url='http://127.0.0.1:{closed_port()}', retries=0))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "[]"
    assert "quote batch failed: connect from qq, 1 code, 1 attempt: connection error" in run.stderr
    assert "refused" in run.stderr.lower()


# ------------------------------------------------------------------ the pull session
class Clock:
    def __init__(self, when: str) -> None:
        self.now = dt.datetime.fromisoformat(when)

    def __call__(self) -> dt.datetime:
        return self.now


def test_codes_missing_from_an_answer_are_asked_again_in_the_same_cycle(server: QuoteServer) -> None:
    server.omit_next(["SZ000001", "SZ300750"])  # Sina: an answer without their lines
    with PullSession(SinaClient(base_url=server.url, **FAST), retry_batch_size=1) as session:
        cycle = session.fetch(CODES)
    assert sorted(s.symbol for s in cycle.spots) == sorted(CODES) and cycle.ok  # delivered in the cycle
    assert cycle.missing_retried == ["SZ000001", "SZ300750"] and cycle.missing_recovered == 2
    assert sorted(r.tokens for r in server.requests[1:]) == [["sz000001"], ["sz300750"]]  # smaller batches
    assert session.stats()["missing_retried"] == 2 and not cycle.dropped


def test_truncated_answer_codes_are_asked_again_next_cycle_if_still_missing(server: QuoteServer) -> None:
    server.truncate = 30  # every answer loses its last code: the retry too
    with PullSession(QQClient(base_url=server.url, **FAST)) as session:
        first = session.fetch(CODES)
        assert first.missing_retried == ["SH688981"] and first.missing_recovered == 0
        assert first.failed_codes == ["SH688981"] and first.failures == {"truncated": 1}
        server.truncate = 0
        second = session.fetch(CODES)
    assert "SH688981" in {s.symbol for s in second.spots} and second.ok  # asked again, delivered
    assert session.dropped == [] and session.stats()["missing_retried"] == 1


def test_one_partial_qq_answer_does_not_drop_codes(server: QuoteServer) -> None:
    """Tencent leaves unknown codes out, so a code left out of one answer looks unknown: it must be
    asked again next cycle, not dropped for good (the measured defect)."""
    server.omit_next(["SZ300750"])
    with PullSession(QQClient(base_url=server.url, **FAST)) as session:
        first = session.fetch(CODES)
        assert first.unknown == ["SZ300750"] and first.dropped == []
        second = session.fetch(CODES)
    assert "SZ300750" in {s.symbol for s in second.spots}
    assert server.requests[-1].tokens.count("sz300750") == 1 and session.stats()["unknown_streaks"] == 0


@pytest.mark.parametrize("source", ["qq", "sina"])
def test_unknown_codes_are_dropped_after_n_cycles_and_reprobed_next_trading_day(
    server: QuoteServer, source: str
) -> None:
    listed = dict(MARKET)
    server.source = lambda symbols: {s: listed.get(s) for s in symbols}
    clock = Clock("2026-11-20 10:00:00")  # a Friday
    codes = [*CODES, "SH600001", "SH600002"]  # not listed (yet)
    client = fetcher.make_client(source, base_url=server.url, **FAST)
    with PullSession(client, drop_after=3, calendar=TradingCalendar.china(), clock=clock) as session:
        for cycle_no in (1, 2):
            cycle = session.fetch(codes)
            assert cycle.unknown == ["SH600001", "SH600002"] and cycle.dropped == [], cycle_no
        third = session.fetch(codes)
        assert third.dropped == ["SH600001", "SH600002"] and session.dropped == ["SH600001", "SH600002"]
        server.clear_requests()
        listed["SH600001"] = spot("SH600001")  # listed today: not asked again before the next trading day
        assert len(session.fetch(codes).spots) == len(CODES)
        assert "sh600001" not in server.tokens()
        clock.now = dt.datetime(2026, 11, 21, 10, 0)  # Saturday: no trading day, no re-probe
        session.fetch(codes)
        assert "sh600001" not in server.tokens()
        clock.now = dt.datetime(2026, 11, 23, 9, 15)  # Monday
        monday = session.fetch(codes)
        assert monday.reprobed == ["SH600001", "SH600002"] and monday.revived == ["SH600001"]
        assert "SH600001" in {s.symbol for s in monday.spots} and session.dropped == ["SH600002"]
        server.clear_requests()
        session.fetch(codes)  # the still-unknown one waits for the next trading day again
        assert "sh600002" not in server.tokens() and "sh600001" in server.tokens()
    stats = session.stats()
    assert (stats["dropped"], stats["reprobed"], stats["revived"], stats["dropped_now"]) == (2, 2, 1, 1)


def test_the_unknown_count_needs_consecutive_answers(server: QuoteServer) -> None:
    listed = dict(MARKET)
    server.source = lambda symbols: {s: listed.get(s) for s in symbols}
    codes = [*CODES, "SH600001"]
    with PullSession(SinaClient(base_url=server.url, **FAST), drop_after=3, clock=Clock("2026-11-20 10:00")) as s:
        s.fetch(codes)
        s.fetch(codes)  # unknown twice
        listed["SH600001"] = spot("SH600001")
        assert "SH600001" in {x.symbol for x in s.fetch(codes).spots}  # a quote resets the count
        del listed["SH600001"]
        s.fetch(codes)
        s.fetch(codes)  # unknown twice again
        server.fail_next(1)  # a cycle without an answer says nothing either way
        assert s.fetch(codes).failures == {"http_500": 1}
        assert s.dropped == []
        assert s.fetch(codes).dropped == ["SH600001"]  # the third unknown answer running


def test_a_reprobe_without_an_answer_is_tried_again(server: QuoteServer) -> None:
    clock = Clock("2026-11-20 10:00")
    codes = [*CODES, "SH600001"]
    with PullSession(QQClient(base_url=server.url, **FAST), drop_after=1, clock=clock) as session:
        assert session.fetch(codes).dropped == ["SH600001"]
        clock.now = dt.datetime(2026, 11, 23, 9, 15)
        server.fail_next(1)
        assert session.fetch(codes).reprobed == ["SH600001"]  # its batch failed: no verdict
        assert session.fetch(codes).reprobed == ["SH600001"]  # so it is asked again
        assert session.fetch(codes).reprobed == []  # answered unknown: dropped until the next day


def test_pull_session_options_are_checked() -> None:
    with pytest.raises(ValueError, match="drop_after"):
        fetcher.PullConfig(drop_after=0)
    with pytest.raises(TypeError):
        PullSession(QQClient(), fetcher.PullConfig(), drop_after=2)
    with pytest.raises(ValueError, match="deadline"):
        QQClient(deadline=0)
    with pytest.raises(ValueError, match="max_body_bytes"):
        QQClient(max_body_bytes=10)
