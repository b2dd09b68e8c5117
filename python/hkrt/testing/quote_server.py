"""A real local HTTP server that answers like Sina (``/list=...``) and Tencent (``/q=...``).

It serves GBK bodies rendered from a *quote source*, a callable ``(symbols) -> {symbol: Spot | None}``
(None: an unknown code), so a fixed dict or a simulated market can back it.  Each Spot is written back
in the source's wire units (Sina: SH index volume in lots; Tencent: lots and 万元), exactly inverting
``hkrt.fetcher.sina`` and ``hkrt.fetcher.qq`` up to each format's rounding.  Failure modes the real
hosts show can be switched on at runtime.  Loopback only::

    with QuoteServer({"SH600000": spot}) as server:
        spots = hkrt.fetcher.get_spot(["sh600000"], source="sina", base_url=server.base_url("sina"))
"""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from hkrt._hkrt import Spot, normalize_symbol
from hkrt.adapters.qq.mapping import LOT, WAN
from hkrt.adapters.sina.mapping import volume_in_lots

QuoteSource = Callable[[list[str]], Mapping[str, "Spot | None"]]

KINDS = ("sina", "qq")
TOKEN = re.compile(r"^(sh|sz|bj)\d{6}$")  # what the real hosts accept as a code
FORBIDDEN = b"Kinsoku jikou desu!"  # Sina's 403 body
SINA_AUTH_FAILED = 'var hq_str_sys_auth="FAILED";\n'
QQ_NONE_MATCH = 'v_pv_none_match="1";\n'
_QQ_MARKET_ID = {"SH": "1", "SZ": "51", "BJ": "62"}


# ------------------------------------------------------------------ rendering
def is_index(symbol: str) -> bool:
    """SH 000xxx, SZ 399xxx and BJ 899xxx are indices."""
    return normalize_symbol(symbol).startswith(("SH000", "SZ399", "BJ899"))


def render_sina(spot: Spot) -> str:
    """A Spot as one Sina statement, ``var hq_str_sh600000="...";``.

    Rounding: prices to 3 dp (SH indices 4 dp), volumes to the share (SH indices: to the lot), SH index
    amount to the yuan, other amounts to 3 dp; the time to the second.
    """
    symbol = spot.symbol
    sh_index = symbol.startswith("SH000")
    digits = 4 if sh_index else 3

    def price(x: float) -> str:
        return f"{x:.{digits}f}"

    volume = round(spot.volume / LOT) if volume_in_lots(symbol) else round(spot.volume)
    amount = f"{spot.amount:.0f}" if sh_index else f"{spot.amount:.3f}"
    book: list[str] = []
    for volumes, prices in ((spot.bid_volume, spot.bid), (spot.ask_volume, spot.ask)):
        for v, p in zip(volumes, prices, strict=True):
            book += [str(round(v)), price(p)]
    suspended = spot.open == 0 and spot.close == 0 and spot.volume == 0
    fields = [
        spot.name,
        price(spot.open),
        price(spot.yesterday_close),
        price(spot.close),
        price(spot.high),
        price(spot.low),
        price(spot.bid[0]),
        price(spot.ask[0]),
        str(volume),
        amount,
        *book,
        spot.datetime.strftime("%Y-%m-%d"),
        spot.datetime.strftime("%H:%M:%S"),
        "03" if suspended else "00",
    ]
    if spot.market == "SH":
        fields.append("")  # SH lines carry an empty after-hours field: they end ',00,"'
    elif spot.market == "BJ":
        fields += ["0.0000", "0.0000", "0", "0", "B", "T"]  # BJ's six undocumented extras
    return f'var hq_str_{_wire(symbol)}="{",".join(fields)}";'


def _qq_price(x: float) -> str:
    """2 dp like Tencent's stocks and indices, 3 dp when the price needs it (funds, bonds)."""
    return f"{x:.2f}" if abs(round(x, 2) - x) < 1e-9 else f"{x:.3f}"


def render_qq(spot: Spot) -> str:
    """A Spot as one Tencent statement of 88 ``~`` fields, ``v_sh600000="...";``.

    Rounding: volumes to the lot, the amount to the yuan (f35; f37 to the 万元, 0.01 万元 for BJ),
    prices to 2 dp (3 when needed), the time to the second.
    """
    symbol = spot.symbol
    index = is_index(symbol)
    lots = round(spot.volume / LOT)
    wan = spot.amount / WAN
    f = [""] * 88
    f[0], f[1], f[2] = _QQ_MARKET_ID[spot.market], spot.name, spot.code
    f[3], f[4], f[5] = _qq_price(spot.close), _qq_price(spot.yesterday_close), _qq_price(spot.open)
    f[6], f[7], f[8] = str(lots), str(lots // 2), str(lots - lots // 2)  # volume = outer + inner
    for i in range(5):
        f[9 + 2 * i], f[10 + 2 * i] = _qq_price(spot.bid[i]), str(round(spot.bid_volume[i] / LOT))
        f[19 + 2 * i], f[20 + 2 * i] = _qq_price(spot.ask[i]), str(round(spot.ask_volume[i] / LOT))
    f[30] = spot.datetime.strftime("%Y%m%d%H%M%S")
    change = spot.close - spot.yesterday_close if spot.close else 0.0
    f[31] = f"{change:.2f}"
    f[32] = f"{change / spot.yesterday_close * 100:.2f}" if spot.yesterday_close else "0.00"
    f[33], f[34] = _qq_price(spot.high), _qq_price(spot.low)
    f[35] = f"{_qq_price(spot.close)}/{lots}/{round(spot.amount)}"
    f[36] = str(lots)
    f[37] = f"{wan:.2f}" if spot.market == "BJ" else str(round(wan))
    f[38], f[41], f[42] = "0.00", f[33], f[34]
    f[43] = f"{(spot.high - spot.low) / spot.yesterday_close * 100:.2f}" if spot.yesterday_close else "0.00"
    f[44] = f[45] = f[46] = "0.00"
    if index:
        f[47] = f[48] = "-1"
    else:
        limit = _price_limit(symbol)
        f[47] = f"{spot.yesterday_close * (1 + limit):.2f}"
        f[48] = f"{spot.yesterday_close * (1 - limit):.2f}"
    f[49], f[50] = "0.00", "0"
    f[51] = f"{spot.amount / spot.volume:.2f}" if spot.volume else "0.00"
    f[56] = "" if index else "0.01"
    f[57] = f"{wan:.4f}"
    f[58] = f[59] = "0"
    f[60], f[61] = (" ", "ZS") if index else ("   A", "GP-A")
    f[82], f[83] = "CNY", "0"
    return f'v_{_wire(symbol)}="{"~".join(f)}";'


def _price_limit(symbol: str) -> float:
    if symbol.startswith("BJ"):
        return 0.30
    if symbol.startswith(("SH688", "SZ300", "SZ301")):
        return 0.20
    return 0.10


def _wire(symbol: str) -> str:
    return symbol[:2].lower() + symbol[2:]


def render_body(kind: str, tokens: list[str], quotes: Mapping[str, Spot | None]) -> str:
    """The whole answer to a request for ``tokens`` (wire codes), as the real host would give it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not all(TOKEN.match(t) for t in tokens):
        # Sina voids the whole batch; Tencent's answer is not documented beyond "the batch fails"
        return SINA_AUTH_FAILED if kind == "sina" else QQ_NONE_MATCH
    lines: list[str] = []
    for token in tokens:
        spot = quotes.get(normalize_symbol(token))
        if kind == "sina":
            lines.append(render_sina(spot) if spot is not None else f'var hq_str_{token}="";')
        elif spot is not None:
            lines.append(render_qq(spot))  # Tencent leaves unknown codes out
    if kind == "qq" and not lines:
        lines.append(QQ_NONE_MATCH.rstrip("\n"))
    return "".join(line + "\n" for line in lines)


# ------------------------------------------------------------------ the server
@dataclass
class ServedRequest:
    """One request the server saw."""

    kind: str | None  # "sina", "qq", or None for a path it does not serve
    path: str
    tokens: list[str]  # the codes asked for, as sent
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival
    client: tuple[str, int]  # the client's address and port: one port, one (kept-alive) connection
    status: int | None = None  # None: the connection was dropped
    sent: int = 0  # body bytes written to the client (before it hung up, for trickled and endless answers)
    omitted: list[str] | None = None  # symbols left out of this answer by omit_next()


@dataclass
class _Modes:
    require_referer: bool = True
    delay: float = 0.0
    delay_symbols: frozenset[str] | None = None
    truncate: int = 0
    sys_auth_failed: bool = False
    fail_count: int = 0
    fail_status: int = 500
    drop_count: int = 0
    trickle: float = 0.0  # seconds between two bytes of an answer
    trickle_headers: bool = False  # the status line and headers trickle too
    trickle_symbols: frozenset[str] | None = None  # only answers asking for one of these trickle
    endless: bool = False  # a chunked answer that never ends
    oversize: int = 0  # announce (and send, as long as the client reads) a body of this many bytes
    gzip: bool = False  # gzip-encode answers to clients that accept it
    omit_symbols: frozenset[str] = frozenset()
    omit_count: int = 0


CHUNK = 64 * 1024  # bytes per write of an endless or oversize answer


class QuoteServer:
    """A Sina + Tencent look-alike on ``127.0.0.1`` and a free port; a context manager.

    Args:
        source: a callable ``(symbols: list[str]) -> {symbol: Spot | None}`` with normalised symbols
            ("SH600000"), a mapping symbol -> Spot, or an iterable of Spots.  Missing or None: unknown.
        require_referer: answer a Sina request without a ``*.sina.com.cn`` Referer with HTTP 403, as
            the real host does (on by default).

    Error modes, switchable at any time: ``require_referer``, :meth:`slow`, ``truncate`` (bytes cut
    from each body's end), ``sys_auth_failed`` (Sina), :meth:`fail_next`, :meth:`drop_next`, and the
    hostile ones: :meth:`trickle` (one byte every so often), ``endless`` (a body that never ends),
    ``oversize`` (a huge announced body), :meth:`omit_next` (codes left out of an answer), and
    ``gzip`` (compressed answers); :meth:`reset_modes` turns them all off again.
    """

    def __init__(
        self,
        source: QuoteSource | Mapping[str, Spot | None] | Iterable[Spot],
        *,
        host: str = "127.0.0.1",
        require_referer: bool = True,
    ) -> None:
        self.source = source
        self.host = host
        self._default_referer = require_referer
        self._modes = _Modes(require_referer=require_referer)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[ServedRequest] = []
        self._errors: list[BaseException] = []

    # -- source
    @property
    def source(self) -> QuoteSource:
        return self._source

    @source.setter
    def source(self, source: QuoteSource | Mapping[str, Spot | None] | Iterable[Spot]) -> None:
        if callable(source):
            self._source = source
            return
        if not isinstance(source, Mapping):
            source = {spot.symbol: spot for spot in source}
        table = {normalize_symbol(k): v for k, v in source.items()}
        self._source = lambda symbols: {s: table.get(s) for s in symbols}

    # -- lifecycle
    def start(self) -> QuoteServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="hkrt-quote-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes slow handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> QuoteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, kind: str) -> str:
        """What to pass as ``base_url`` for source ``kind`` ("sina" or "qq")."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return self.url

    # -- error modes
    @property
    def require_referer(self) -> bool:
        return self._modes.require_referer

    @require_referer.setter
    def require_referer(self, on: bool) -> None:
        self._modes.require_referer = on

    @property
    def truncate(self) -> int:
        return self._modes.truncate

    @truncate.setter
    def truncate(self, nbytes: int) -> None:
        self._modes.truncate = max(0, int(nbytes))

    @property
    def sys_auth_failed(self) -> bool:
        return self._modes.sys_auth_failed

    @sys_auth_failed.setter
    def sys_auth_failed(self, on: bool) -> None:
        self._modes.sys_auth_failed = on

    def slow(self, seconds: float, symbols: Iterable[str] | None = None) -> None:
        """Hold each answer ``seconds`` before sending it; with ``symbols``, only answers to requests
        that ask for one of them.  ``slow(0)`` turns it off."""
        with self._lock:
            self._modes.delay = seconds
            self._modes.delay_symbols = None if symbols is None else frozenset(normalize_symbol(s) for s in symbols)

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` and no quotes."""
        with self._lock:
            self._modes.fail_count, self._modes.fail_status = count, status

    def drop_next(self, count: int) -> None:
        """Close the connection of the next ``count`` requests without answering."""
        with self._lock:
            self._modes.drop_count = count

    def trickle(self, interval: float, *, symbols: Iterable[str] | None = None, headers: bool = False) -> None:
        """Send each answer one byte every ``interval`` seconds (with ``headers``, the status line and
        headers too), as a stalling host or a throttling middlebox does; with ``symbols``, only answers
        to requests asking for one of them.  ``trickle(0)`` turns it off."""
        with self._lock:
            self._modes.trickle, self._modes.trickle_headers = max(0.0, interval), headers
            self._modes.trickle_symbols = None if symbols is None else frozenset(normalize_symbol(s) for s in symbols)

    @property
    def endless(self) -> bool:
        """Answer 200 with a chunked body that repeats the quotes until the client hangs up."""
        return self._modes.endless

    @endless.setter
    def endless(self, on: bool) -> None:
        self._modes.endless = on

    @property
    def oversize(self) -> int:
        """Announce a ``Content-Length`` of this many bytes (the quotes, then blanks) and send it for as
        long as the client reads; 0 is off."""
        return self._modes.oversize

    @oversize.setter
    def oversize(self, nbytes: int) -> None:
        self._modes.oversize = max(0, int(nbytes))

    @property
    def gzip(self) -> bool:
        """gzip-encode the answers of requests that accept it (``Content-Encoding: gzip``)."""
        return self._modes.gzip

    @gzip.setter
    def gzip(self, on: bool) -> None:
        self._modes.gzip = on

    def omit_next(self, symbols: Iterable[str], count: int = 1) -> None:
        """Leave ``symbols`` out of the next ``count`` answers that ask for one of them, as a partial
        answer: Sina's is then "missing" lines, Tencent's looks as if it did not know them."""
        with self._lock:
            self._modes.omit_symbols = frozenset(normalize_symbol(s) for s in symbols)
            self._modes.omit_count = count

    def reset_modes(self) -> None:
        with self._lock:
            self._modes = _Modes(require_referer=self._default_referer)

    # -- what it saw
    def request_count(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if kind is None or r.kind == kind)

    @property
    def counts(self) -> Counter[str]:
        """Requests per path kind ("sina", "qq", None for others)."""
        with self._lock:
            return Counter(r.kind for r in self.requests)

    def tokens(self, kind: str | None = None) -> list[str]:
        """Every code asked for, in arrival order."""
        with self._lock:
            return [t for r in self.requests if kind is None or r.kind == kind for t in r.tokens]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while serving (a quote source that failed, ...)."""
        return list(self._errors)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def bytes_sent(self) -> int:
        """Body bytes written over every request seen."""
        with self._lock:
            return sum(r.sent for r in self.requests)

    # -- serving
    def _handle(self, handler: _Handler) -> None:
        kind, tokens = parse_request_path(handler.path)
        record = ServedRequest(
            kind, handler.path, tokens, dict(handler.headers.items()), time.monotonic(), handler.client_address[:2]
        )
        with self._lock:
            self.requests.append(record)
            modes = replace(self._modes)  # this request's modes: a switch mid-answer does not tear it
            drop = self._modes.drop_count > 0
            fail = not drop and self._modes.fail_count > 0
            if drop:
                self._modes.drop_count -= 1
            elif fail:
                self._modes.fail_count -= 1
            omitted = [t for t in tokens if _symbol(t) in modes.omit_symbols] if modes.omit_count > 0 else []
            if omitted:
                self._modes.omit_count -= 1
                record.omitted = [normalize_symbol(t) for t in omitted]
        if kind is None:
            _respond(handler, record, 404, b"not found", "text/plain")
            return
        if drop:
            handler.close_connection = True  # nothing written: the client sees the connection close
            return
        if fail:
            _respond(handler, record, modes.fail_status, b"server error", "text/plain")
            return
        if kind == "sina" and modes.require_referer and "sina.com.cn" not in handler.headers.get("Referer", ""):
            _respond(handler, record, 403, FORBIDDEN, "text/html")
            return
        if modes.delay > 0 and (modes.delay_symbols is None or any(_symbol(t) in modes.delay_symbols for t in tokens)):
            self._stopping.wait(modes.delay)
        asked = [t for t in tokens if t not in omitted]
        try:
            if kind == "sina" and modes.sys_auth_failed:
                body = SINA_AUTH_FAILED
            else:
                valid = [normalize_symbol(t) for t in asked if TOKEN.match(t)]
                body = render_body(kind, asked, self._source(valid) if len(valid) == len(asked) else {})
        except Exception as e:  # a broken quote source shows as HTTP 500, and in .errors
            self._errors.append(e)
            _respond(handler, record, 500, f"quote source failed: {e!r}".encode(), "text/plain")
            return
        data = body.encode("gbk", errors="replace")
        if modes.truncate:
            data = data[: max(0, len(data) - modes.truncate)]
        content_type = "application/javascript; charset=GB18030" if kind == "sina" else "text/html; charset=GBK"
        headers = {"Content-Type": content_type}
        if modes.gzip and "gzip" in handler.headers.get("Accept-Encoding", ""):
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        if modes.endless:
            self._send_endless(handler, record, headers, data or b" ")
        elif modes.oversize:
            self._send_oversize(handler, record, headers, data, modes.oversize)
        elif modes.trickle and (
            modes.trickle_symbols is None or any(_symbol(t) in modes.trickle_symbols for t in tokens)
        ):
            self._send_trickle(handler, record, headers, data, modes.trickle, modes.trickle_headers)
        else:
            _respond(handler, record, 200, data, content_type, headers)

    def _send_trickle(
        self,
        handler: _Handler,
        record: ServedRequest,
        headers: dict[str, str],
        data: bytes,
        interval: float,
        trickle_headers: bool,
    ) -> None:
        head = _head(200, {**headers, "Content-Length": str(len(data))})
        record.status = 200
        try:
            if trickle_headers:
                data = head + data
            else:
                handler.wfile.write(head)
            for i in range(len(data)):
                if self._stopping.wait(interval):
                    break
                handler.wfile.write(data[i : i + 1])
                if not trickle_headers or i >= len(head):
                    record.sent += 1
        except OSError:  # the client gave up
            pass
        handler.close_connection = True

    def _send_endless(self, handler: _Handler, record: ServedRequest, headers: dict[str, str], data: bytes) -> None:
        chunk = data * max(1, CHUNK // len(data))
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        record.status = 200
        try:
            handler.wfile.write(_head(200, {**headers, "Transfer-Encoding": "chunked"}))
            while not self._stopping.is_set():
                handler.wfile.write(frame)
                record.sent += len(chunk)
        except OSError:  # the client hung up: the only way this answer ends
            pass
        handler.close_connection = True

    def _send_oversize(
        self, handler: _Handler, record: ServedRequest, headers: dict[str, str], data: bytes, size: int
    ) -> None:
        record.status = 200
        try:
            handler.wfile.write(_head(200, {**headers, "Content-Length": str(max(size, len(data)))}))
            handler.wfile.write(data)
            record.sent += len(data)
            blanks = b" " * CHUNK
            left = size - len(data)
            while left > 0 and not self._stopping.is_set():
                piece = blanks[: min(left, CHUNK)]
                handler.wfile.write(piece)
                record.sent += len(piece)
                left -= len(piece)
        except OSError:
            pass
        handler.close_connection = True


def parse_request_path(path: str) -> tuple[str | None, list[str]]:
    """'/list=sh600000,sz000001' -> ("sina", [...]); '/q=...' -> ("qq", [...]); also '/rn=1&list=...'."""
    for part in re.split(r"[/?&]", path):
        if part.startswith("list="):
            return "sina", [t for t in unquote(part[5:]).split(",") if t]
        if part.startswith("q="):
            return "qq", [t for t in unquote(part[2:]).split(",") if t]
    return None, []


def _symbol(token: str) -> str | None:
    try:
        return normalize_symbol(token)
    except ValueError:
        return None


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    """A raw status line and headers, for answers written byte by byte."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _respond(
    handler: BaseHTTPRequestHandler,
    record: ServedRequest,
    status: int,
    data: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    record.status = status  # before writing: a client that has read the answer may look at once
    try:
        handler.send_response(status)
        for name, value in (headers or {"Content-Type": content_type}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        record.sent += len(data)
    except OSError:  # the client gave up (timed out) meanwhile
        handler.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for idle keep-alive connections
    owner: QuoteServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):
            self.owner._errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real hosts
    timeout = 5  # an idle keep-alive connection is closed after this
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass
