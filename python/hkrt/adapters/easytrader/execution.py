"""EasyTraderOrderBroker: real orders through an easytrader user object (docs/broker-easytrader.md).

Wraps whatever ``easytrader.use(...)`` or ``easytrader.remoteclient.use(...)`` returns.  Three things the
broker it replaces got wrong, and this one must not:

- orders really go out (``user.buy`` / ``user.sell`` / ``user.cancel_entrust``), and every answer form the
  easytrader traders produce is read into an ``OrderResult``; an answer whose meaning is unknown is
  ``Failed`` (the order may be live), never ``Sent`` and never silently dropped;
- a failed asset query never reads as "no cash, no positions": the last good snapshot is kept and marked
  stale, and with none yet ``get_asset_info()`` is ``""`` with ``last_error`` set;
- quantities the exchange would refuse (lots, STAR minimums, off-tick prices) are rejected before sending,
  because the GUI clients auto-confirm warnings and round prices themselves.

Attached to a bus (``attach``), it reports the lifecycle of the orders it sent: a thread polls today's
entrusts and trades and publishes ``ExecutionReport`` events (``hkrt.adapters.reports``).

Over easytrader's HTTP server each request has a whole-request deadline (a server that trickles its answer
cannot hold the strategy's thread: requests' own timeout is per socket read) and a cap on the answer's size,
and no error text or log line carries a login secret, even one the server echoes back encoded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hkrt._hkrt import OrderRequest, OrderResult, OrderStatus
from hkrt.adapters.checks import ExchangeRuleGate, order_quantity_error
from hkrt.adapters.easytrader.config import EasyTraderConfig
from hkrt.adapters.easytrader.mapping import (
    EasyTraderAsset,
    market_of_code,
    order_no_key,
    parse_asset,
    parse_entrusts,
    parse_trades,
    security_code,
)
from hkrt.adapters.poller import Poller
from hkrt.adapters.redaction import redact_secrets
from hkrt.adapters.reports import CANCELLED, REJECTED, OrderReporter

if TYPE_CHECKING:
    from hkrt.bus import EventBus

try:  # requests comes with easytrader; only needed to recognise its errors and to set a timeout
    import requests
except ImportError:  # pragma: no cover - easytrader not installed
    requests = None  # type: ignore[assignment]

logger = logging.getLogger("hkrt.broker.easytrader")

__all__ = [
    "AnswerTooLarge",
    "EasyTraderAsset",
    "EasyTraderOrderBroker",
    "RequestDeadlineExceeded",
    "market_of_code",
    "order_quantity_error",
]


_SERVER_ERROR = re.compile(r"^<class '([\w.]+)'>: (.*)$", re.DOTALL)


def _china_now() -> dt.datetime:
    from hkrt.core.china_time import china_now

    return china_now().replace(microsecond=0)


_Timeout: type[Exception] = requests.exceptions.Timeout if requests else TimeoutError
_RequestError: type[Exception] = requests.exceptions.RequestException if requests else OSError


class RequestDeadlineExceeded(_Timeout):  # type: ignore[valid-type,misc]
    """No complete answer within the whole-request deadline (connect, send, headers and body together)."""


class AnswerTooLarge(_RequestError):  # type: ignore[valid-type,misc]
    """The server's answer is larger than the broker accepts; it was not read to the end."""


class _Watch:
    """The sockets one request uses, cut (socket shutdown) when its deadline passes.

    ``shutdown`` wakes a ``recv`` blocked in the request's own thread at once, on POSIX and Windows; the
    request then fails inside requests/urllib3 and the adapter turns that into ``RequestDeadlineExceeded``.
    Sockets, not connections, are kept: http.client drops a connection's socket (``sock = None``) as soon
    as an answer says ``Connection: close``, while the body is still being read from it.
    """

    _current = threading.local()

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(deadline, self._fire)
        self._timer.daemon = True

    @classmethod
    def track(cls, sock: Any) -> None:
        """Called in the request's thread for each socket it connects or reuses."""
        watch = getattr(cls._current, "watch", None)
        if watch is None or sock is None:
            return
        with watch._lock:
            watch._sockets.append(sock)
            if watch.fired:  # connected after the deadline: cut at once
                _cut(sock)

    def __enter__(self) -> _Watch:
        self._current.watch = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        self._current.watch = None

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                _cut(sock)


def _cut(sock: Any) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: its override would drop the TLS object under the
    # reading thread's feet; a plain shutdown just makes that thread's read fail.  urllib3's SSLTransport
    # (TLS inside a proxy's TLS tunnel) is no socket: cut the socket it wraps.  OSError: already closed.
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if isinstance(raw, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(raw, socket.SHUT_RDWR)


def _tracking(pool_cls: type) -> type:
    """``pool_cls`` whose connections report their sockets to the running request's ``_Watch``."""

    class TrackingConnection(pool_cls.ConnectionCls):  # type: ignore[name-defined,misc]
        def connect(self) -> None:
            super().connect()
            _Watch.track(self.sock)

    class TrackingPool(pool_cls):  # type: ignore[misc]
        ConnectionCls = TrackingConnection

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            _Watch.track(getattr(conn, "sock", None))  # a kept-alive connection is not connected again
            return conn

    TrackingPool.__name__ = TrackingPool.__qualname__ = f"Tracking{pool_cls.__name__}"
    return TrackingPool


def _track_pools(manager: Any) -> Any:
    classes = getattr(manager, "pool_classes_by_scheme", None)
    if isinstance(classes, Mapping) and not getattr(manager, "_hkrt_tracking", False):
        manager.pool_classes_by_scheme = {scheme: _tracking(cls) for scheme, cls in classes.items()}
        manager._hkrt_tracking = True
    return manager


class _DeadlineAdapter(requests.adapters.HTTPAdapter if requests else object):  # type: ignore[misc]
    """Gives every request of RemoteClient's session a whole-request deadline and a cap on its answer.

    RemoteClient's session sends with no timeout at all, and requests' own timeout is per socket
    operation, so a server that trickles a byte a second would hold the strategy's thread for good.  Here
    a timer shuts the request's sockets down at the deadline; the answer body is read inside the deadline
    (not later by the session), at most ``max_bytes`` of it.
    """

    def __init__(self, deadline: float | None, max_bytes: int | None) -> None:
        super().__init__()
        self.deadline = deadline
        self.max_bytes = max_bytes
        _track_pools(self.poolmanager)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:  # also called on unpickling
        super().init_poolmanager(*args, **kwargs)
        _track_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return _track_pools(super().proxy_manager_for(proxy, **proxy_kwargs))

    def send(self, request: Any, stream: bool = False, timeout: Any = None, **kwargs: Any) -> Any:
        if self.deadline is None:
            return self._send_capped(request, stream, timeout, **kwargs)
        if timeout is None:  # also per socket operation, so that a connect cannot outlast the deadline
            timeout = self.deadline
        start = time.monotonic()
        with _Watch(self.deadline) as watch:
            try:
                return self._send_capped(request, stream, timeout, **kwargs)
            except AnswerTooLarge:
                raise
            except Exception as exc:  # whatever the cut socket made requests or urllib3 raise
                if watch.fired or time.monotonic() - start >= self.deadline:
                    raise RequestDeadlineExceeded(
                        f"no complete answer within the {self.deadline:g} s deadline "
                        f"({type(exc).__name__} after {time.monotonic() - start:.2f} s)",
                        request=request,
                    ) from None
                raise

    def _send_capped(self, request: Any, stream: bool, timeout: Any, **kwargs: Any) -> Any:
        response = super().send(request, stream=stream, timeout=timeout, **kwargs)
        if stream:
            return response
        cap = self.max_bytes
        declared = response.headers.get("Content-Length", "")
        if cap is not None and declared.isdigit() and int(declared) > cap:
            response.close()
            raise AnswerTooLarge(f"answer of {int(declared)} bytes is over the {cap} byte limit", request=request)
        body = bytearray()
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if cap is not None and len(body) > cap:
                response.close()
                raise AnswerTooLarge(f"answer over the {cap} byte limit (not read to its end)", request=request)
        # What Response.content would have read later, outside the deadline: keep it there for the session.
        response._content = bytes(body)
        return response


@dataclasses.dataclass
class _CallError:
    """An exception from the user object, classified."""

    refused: bool  # the trader said no: the order was not placed
    text: str


def _classify(exc: BaseException, where: str, scrub: Callable[[str], str] = str) -> _CallError:
    """Turn an exception from a local trader or from RemoteClient into a clear text, and tell a refusal
    (TradeError: the broker's dialog said no) from a failure (state unknown).  ``scrub`` hides secrets; it
    runs before any text is cut short, so that no part of a secret survives the cut."""
    name = type(exc).__name__
    if name == "TradeError":  # easytrader.exceptions.TradeError raised by a local trader
        return _CallError(True, str(exc))
    if isinstance(exc, RequestDeadlineExceeded):
        return _CallError(False, f"{where} did not answer in time: {exc}; the request's outcome is unknown")
    if isinstance(exc, AnswerTooLarge):
        return _CallError(False, f"{where} answered too much: {exc}; the request's outcome is unknown")
    if requests is not None:
        if isinstance(exc, requests.exceptions.ConnectionError):  # refused, reset, or connect timeout
            return _CallError(False, f"connection to {where} failed: {exc}")
        if isinstance(exc, requests.exceptions.Timeout):
            return _CallError(False, f"{where} did not answer in time ({exc}); the request's outcome is unknown")
        if isinstance(exc, requests.exceptions.JSONDecodeError):
            # RemoteClient calls .json() on any answer: an HTML error page (404, a proxy's 500) ends here.
            body = scrub(getattr(exc, "doc", "") or "")
            return _CallError(False, f"{where} answered with a non-JSON body: {body.strip()[:200]!r}")
    m = _SERVER_ERROR.match(str(exc))
    if m and type(exc) is Exception:
        # easytrader's server answers every exception as 400 {"error": "<class 'X'>: text"} and
        # RemoteClient re-raises it as a bare Exception: recover the class to tell refusals from faults.
        cls, text = m.group(1), m.group(2)
        short = cls.rsplit(".", 1)[-1]
        if short == "TradeError":
            return _CallError(True, text)
        if short == "KeyError" and text.strip() == "'user'":
            return _CallError(False, f"{where} has no logged-in trader: POST /prepare (user.prepare) first")
        if short == "TypeError" and "keyword argument 'kwargs'" in text:
            return _CallError(
                False,
                f"{where}: the trader does not accept the nested 'kwargs' RemoteClient sends "
                f"(easytrader 0.23.7 server with miniqmt/xq): {text}",
            )
        return _CallError(False, f"{where} failed: {short}: {text}")
    return _CallError(False, f"{where} failed: {name}: {exc}")


class EasyTraderOrderBroker(ExchangeRuleGate):
    """An ``OrderBrokerBase`` over an easytrader user object, local or remote.

    ``prefix_market``: send ``sh600000`` instead of ``600000`` (THS clients then pick the exchange
    themselves; miniqmt must get six digits).  ``timeout``: the whole-request deadline in seconds for each of
    a RemoteClient's HTTP calls, from connecting to the answer's last byte (None leaves easytrader's: no
    timeout at all).  ``max_answer_bytes``: a larger answer is refused unread (None: no cap).
    ``check_quantities``: reject off-lot and off-tick orders before sending.  ``clock``: the time stamped on
    asset snapshots (China local, naive).  ``secrets``: texts (the login password, the communication
    password) scrubbed from every error text and log line, in whatever encoding a server echoes them.
    ``poll_interval``: seconds between two reads of today's entrusts and trades once :meth:`attach`-ed
    (the order lifecycle reports; docs/broker-easytrader.md).
    """

    def __init__(
        self,
        user: Any,
        name: str = "EasyTraderOrderBroker",
        *,
        prefix_market: bool = False,
        timeout: float | None = 30.0,
        max_answer_bytes: int | None = 8 * 1024 * 1024,
        check_quantities: bool = True,
        clock: Callable[[], dt.datetime] = _china_now,
        secrets: Iterable[str | None] = (),
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__(name)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds (or None), not {timeout!r}")
        if max_answer_bytes is not None and max_answer_bytes <= 0:
            raise ValueError(f"max_answer_bytes must be > 0 (or None), not {max_answer_bytes!r}")
        self._user = user
        self._timeout = timeout
        self._prefix_market = prefix_market
        self.check_exchange_rules = check_quantities
        self._clock = clock
        # GUI automation is single-threaded and the server shares one user among all clients: one call at a time.
        self._lock = threading.RLock()
        self._snapshot: EasyTraderAsset | None = None
        self._asset_failures = 0
        self._last_asset_error = ""
        self._entrust_nos: dict[str, Any] = {}  # our id text -> the trader's own value (THS str, miniqmt int)
        self._where = self._describe(user)
        self._secrets: set[str] = {s for s in secrets if s}
        session = getattr(user, "_s", None)
        if requests is not None and isinstance(session, requests.Session):
            # RemoteClient keeps its requests session in ``_s``; mounting an adapter on that object (not on
            # easytrader's code) is how its requests get their deadline and size cap.
            adapter = _DeadlineAdapter(timeout, max_answer_bytes)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        # Entrusts a send() got a number for, by order_no_key(number); the poller reads the rest of their lives.
        self._reporter = OrderReporter(name, clock=clock)
        self._poller = Poller(name, self._poll_lifecycle, interval=poll_interval, scrub=self._scrub)

    @staticmethod
    def _describe(user: Any) -> str:
        api = getattr(user, "_api", None)
        if isinstance(api, str):
            return f"easytrader server {api}"
        return f"easytrader {type(user).__name__}"

    @property
    def user(self) -> Any:
        return self._user

    def add_secret(self, secret: str | None) -> None:
        """Scrub ``secret`` from every later error text and log line too."""
        if secret:
            self._secrets.add(secret)

    def _scrub(self, text: str) -> str:
        return redact_secrets(text, self._secrets) if self._secrets else text

    def prepare(self, **login: Any) -> Any:
        """``user.prepare(**login)`` (log the server's trader in) under the same deadline as orders, its
        ``password`` and ``comm_password`` added to the secrets first; ValueError with the server's reason,
        scrubbed, when it refuses or fails."""
        for key in ("password", "comm_password"):
            self.add_secret(login.get(key))
        if login.get("config_path"):  # RemoteClient reads the login from this JSON file and sends it
            with contextlib.suppress(OSError, ValueError, AttributeError):
                with open(login["config_path"], encoding="utf-8") as f:
                    account = json.load(f)
                for key in ("password", "comm_password"):
                    self.add_secret(str(account.get(key) or ""))
        try:
            with self._lock:
                return self._user.prepare(**login)
        except Exception as e:
            raise ValueError(
                self._scrub(f"login refused or failed: {_classify(e, self._where, self._scrub).text}")
            ) from None

    @property
    def asset_failures(self) -> int:
        """How many asset queries have failed since the broker was made."""
        return self._asset_failures

    @property
    def last_asset_error(self) -> str:
        return self._last_asset_error

    # ---- orders ---------------------------------------------------------------------------------

    def _security(self, market: str, code: str) -> str:
        return security_code(market, code, prefix_market=self._prefix_market)

    def send(self, side: str, request: OrderRequest) -> OrderResult:
        """Map the order to the trader's call and send it (the exchange's rules were checked before:
        :class:`hkrt.adapters.checks.ExchangeRuleGate`)."""
        market, code, price, num = request.market.upper(), request.code, request.price, request.num
        call = self._user.buy if side == "buy" else self._user.sell
        try:
            with self._lock:
                answer = call(security=self._security(market, code), price=round(price, 3), amount=round(num))
        except Exception as e:
            err = _classify(e, self._where, self._scrub)
            text = self._scrub(err.text)
            if err.refused:
                return OrderResult(OrderStatus.Rejected, error=f"{side} {market}{code} refused: {text}")
            logger.warning("%s: %s %s%s failed: %s", self.name, side, market, code, text)
            return OrderResult(OrderStatus.Failed, error=f"{side} {market}{code}: {text}")
        result = self._read_order_answer(side, f"{market}{code}", answer)
        if result.error:
            result = OrderResult(result.status, order_id=result.order_id, error=self._scrub(result.error))
        if result.status == OrderStatus.Sent and result.order_id:
            self._reporter.track(
                order_no_key(result.order_id),
                request.client_order_id,
                f"{market}{code}",
                side,
                broker_order_id=result.order_id,
            )
        return result

    def _read_order_answer(self, side: str, what: str, answer: Any) -> OrderResult:
        if isinstance(answer, list) and len(answer) == 1:  # xq answers a one-element list
            answer = answer[0]
        if isinstance(answer, Mapping):
            if "entrust_no" in answer:
                no = answer["entrust_no"]
                if isinstance(no, int | float) and not isinstance(no, bool) and no <= 0:
                    # miniqmt: order_stock returned -1, the order was refused
                    return OrderResult(OrderStatus.Rejected, error=f"{side} {what} refused (entrust_no {no})")
                if no in (None, ""):
                    return OrderResult(OrderStatus.Sent)
                key = str(no)
                self._entrust_nos[key] = no
                return OrderResult(OrderStatus.Sent, order_id=key)
            if "error_info" in answer or "error_no" in answer:  # xq rebalancing error
                text = answer.get("error_info") or answer.get("error_no")
                return OrderResult(OrderStatus.Rejected, error=f"{side} {what} refused: {text}")
            if "message" in answer:
                message = str(answer["message"])
                if message == "success":
                    # THS answers this when no confirmation dialog appeared: sent, but with no entrust number.
                    return OrderResult(OrderStatus.Sent)
                return OrderResult(OrderStatus.Rejected, error=f"{side} {what} refused: {message}")
        # None (xq when its HTTP post failed) or anything else: we cannot tell whether the order is live.
        return OrderResult(
            OrderStatus.Failed,
            error=f"{side} {what}: unrecognised answer {self._scrub(repr(answer))[:200]}; "
            "check today_entrusts before resending",
        )

    def _sellable(self, market: str, code: str) -> float | None:
        snap = self.asset()
        if snap is None:
            return None
        key = (market, code)
        if key in snap.available:
            return snap.available[key]
        held = [p.number for p in snap.positions if (p.market, p.code) == key]
        return held[0] if held else 0.0

    def sellable(self, market: str, code: str) -> float | None:
        return self._sellable(market, code)

    def _cancel(self, order_id: str) -> OrderResult:
        # THS matches the 合同编号 column as text, miniqmt wants the int it gave: send back what we got.
        entrust_no = self._entrust_nos.get(order_id, order_id)
        try:
            with self._lock:
                answer = self._user.cancel_entrust(entrust_no)
        except Exception as e:
            err = _classify(e, self._where, self._scrub)
            status = OrderStatus.Rejected if err.refused else OrderStatus.Failed
            return OrderResult(status, order_id=order_id, error=self._scrub(f"cancel {order_id}: {err.text}"))
        if isinstance(answer, Mapping):
            if answer.get("success") is False:
                why = self._scrub(f"cancel {order_id} refused: {answer.get('message', 'failed')}")
                return OrderResult(OrderStatus.Rejected, order_id=order_id, error=why)
            message = str(answer.get("message", ""))
            if answer.get("success") is True or message == "success" or "成功" in message:
                return OrderResult(OrderStatus.Sent, order_id=order_id)
            if message:  # e.g. 委托单状态错误不能撤单
                why = self._scrub(f"cancel {order_id}: {message}")
                return OrderResult(OrderStatus.Rejected, order_id=order_id, error=why)
        why = f"cancel {order_id}: unrecognised answer {self._scrub(repr(answer))[:200]}"
        return OrderResult(OrderStatus.Failed, order_id=order_id, error=why)

    # ---- order lifecycle reports -------------------------------------------------------------------

    def adopt_order(self, broker_order_id: str, client_order_id: str, symbol: str, side: str) -> None:
        """Report the lifecycle of an order sent today by an earlier run (a restarted ``hkrt trader`` reads
        them from its journal), as if this broker had sent it: its entrust is no longer foreign."""
        self._reporter.track(order_no_key(broker_order_id), client_order_id, symbol, side,
                             broker_order_id=broker_order_id)  # fmt: skip

    def attach(self, bus: EventBus) -> None:
        """Publish the lifecycle of the orders this broker sends onto ``bus`` as ``ExecutionReport``
        events: a thread reads today's entrusts and trades every ``poll_interval`` seconds until
        :meth:`detach`."""
        self._reporter.broker = self.name
        self._poller.name = self.name
        self._reporter.attach(bus.publish)
        self._poller.start()

    def detach(self) -> None:
        """Stop polling and publishing (waits for a poll under way, at most its requests' deadline)."""
        self._poller.stop(timeout=self._poll_join_timeout())
        self._reporter.detach()

    def _poll_join_timeout(self) -> float:
        # a poll is two requests, each within the deadline (a local user object has none: a few seconds)
        return 2 * self._timeout + 1 if self._timeout is not None else 5.0

    def poll_reports(self) -> bool:
        """Read today's entrusts and trades once now and publish what changed (the thread does this every
        ``poll_interval`` seconds); True when both reads worked.  Reports go out only while attached."""
        return self._poller.poll_now()

    def _poll_lifecycle(self) -> None:
        """One poll: ``today_entrusts`` then ``today_trades`` (two requests, each in turn with the orders,
        under the same deadline and size cap); then the reporter sees the working states (accepted), the
        trades (fills) and the final states (cancelled / rejected), in that order, so that a cancel after a
        partial fill reaches the order manager after that fill.  Raises when a read fails: nothing of a
        half-read poll is published."""
        entrusts = parse_entrusts(self._read_grid("today_entrusts"))
        trades = parse_trades(self._read_grid("today_trades"), self._clock().date())
        reporter = self._reporter
        for e in entrusts:
            if e.state not in (CANCELLED, REJECTED):
                reporter.order_state(e.order_no, e.state, filled=e.filled, reason=e.reason or e.status)
        for t in trades:
            reporter.trade(t.order_no, t.trade_id, t.shares, t.price, when=t.when)
        for e in entrusts:
            if e.state in (CANCELLED, REJECTED):
                reason = e.status if e.reason in ("", e.status) else f"{e.status}: {e.reason}"
                reporter.order_state(e.order_no, e.state, filled=e.filled, reason=reason)
        reporter.flush()

    @property
    def report_stats(self) -> dict[str, int]:
        """Counters of the lifecycle reports: polls, poll_failures, reports, fills, duplicate_trades,
        foreign_orders (entrusts this broker did not send), unknown_states, finals_held, finals_forced, …"""
        return {**self._poller.stats, **self._reporter.stats}

    @property
    def last_poll_error(self) -> str:
        return self._poller.last_error

    def _read_grid(self, name: str) -> Any:
        """``user.today_entrusts`` / ``user.today_trades``, one request at a time with the orders; raises
        RuntimeError with a clear, scrubbed text on failure."""
        try:
            with self._lock:
                return getattr(self._user, name)
        except Exception as e:
            raise RuntimeError(self._scrub(f"{name}: {_classify(e, self._where, self._scrub).text}")) from None

    # ---- asset ----------------------------------------------------------------------------------

    def asset(self, refresh: bool = True) -> EasyTraderAsset | None:
        """The account now; on failure the last good snapshot marked ``stale`` (``error`` says why), or None
        when there has never been one.  ``refresh=False`` returns the last snapshot without asking."""
        if not refresh:
            return self._snapshot
        try:
            with self._lock:
                balance = self._user.balance
                position = self._user.position
        except Exception as e:
            return self._asset_failed(_classify(e, self._where, self._scrub).text)
        try:
            snap = parse_asset(balance, position, self._clock())
        except ValueError as e:
            return self._asset_failed(f"{self._where} answered an unusable asset: {e}")
        self._snapshot = snap
        return snap

    def _asset_failed(self, text: str) -> EasyTraderAsset | None:
        text = self._scrub(text)
        self._asset_failures += 1
        self._last_asset_error = text
        if self._snapshot is None:
            logger.warning("%s: asset query failed, no snapshot yet: %s", self.name, text)
            return None
        logger.warning(
            "%s: asset query failed (%d so far), keeping the snapshot of %s: %s",
            self.name,
            self._asset_failures,
            self._snapshot.as_of,
            text,
        )
        self._snapshot = dataclasses.replace(self._snapshot, stale=True, error=text)
        return self._snapshot

    def _get_asset_info(self) -> str:
        snap = self.asset()
        if snap is None:
            raise RuntimeError(self._last_asset_error)
        return snap.to_json()


def make_execution_client(config: EasyTraderConfig) -> EasyTraderOrderBroker:
    """easytrader's remote client to its server on the trading PC (docs/broker-easytrader.md), logged in
    when the config has login settings."""
    try:
        from easytrader import remoteclient
    except ImportError as err:
        hint = "pip install easytrader"
        raise ImportError(f"the easytrader broker needs the easytrader package ({hint}): {err}") from None
    user = remoteclient.use(config.client, config.host, config.port)
    # The broker first, so that the login request has its deadline and size cap, and its error text (which
    # a server may fill with the request it got) is scrubbed of the passwords.
    broker = EasyTraderOrderBroker(
        user, timeout=config.timeout, secrets=config.secrets(), poll_interval=config.poll_interval
    )
    login = config.login()
    if login:
        try:
            broker.prepare(**login)
        except ValueError as err:
            raise ValueError(f"the easytrader server at {config.host}: {err}") from None
    return broker
