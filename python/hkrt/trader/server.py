"""``TraderServer``: one real broker behind an nng reply socket, its calls on worker threads of its own.

Threads (docs/trader-process.md has the diagram):

- the request loop answers every request at once: it records what it was asked (a submit is journaled
  first), queues the work and returns the events the client has not seen yet; it never calls the broker,
  so a hung broker call never delays an answer;
- the order worker runs submits, cancels and (for a paper broker) market data in arrival order;
- the asset worker runs account queries, so a hung order call does not hold them too (they time out at the
  client);
- the broker's reports arrive on a local event bus and become events.

Bounds (documented policy): the order queue holds :data:`MAX_QUEUE` items; a submit past it is answered
``Rejected`` (``trader queue full``) at once, loudly; market data past it is dropped and counted.  The event
ring keeps the newest :data:`RING_EVENTS` events for re-request: a client further behind is told the sequence
numbers it missed (it counts them and warns).  At most :data:`MAX_SESSIONS` client sessions are remembered.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import queue
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hkrt._hkrt import OrderBrokerBase, OrderResult, OrderSide, OrderStatus
from hkrt.bus import EventBus, ExecutionReport
from hkrt.bus.events import DayClosed, SpotBatch
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.feed.reply_loop import serve_replies
from hkrt.trader.journal import UNKNOWN, TraderJournal
from hkrt.trader.protocol import (
    AUTH_REFUSED,
    MAX_EVENTS_PER_REPLY,
    ProtocolError,
    check_address,
    decode,
    encode,
    report_to_dict,
    request_from_dict,
)

if TYPE_CHECKING:
    import pynng

log = logging.getLogger("hkrt.trader")

MAX_QUEUE = 10_000
RING_EVENTS = 10_000
MAX_SESSIONS = 1_000
_WARN_INTERVAL = 60.0


class TraderServer:
    """Serve ``broker`` on ``address`` (see the module docstring).

    Args:
        broker: the real broker (an ``OrderBrokerBase``; one with ``attach(bus)`` reports).
        address: ``ipc://PATH`` (the socket made owner-only) or ``tcp://127.0.0.1:PORT`` (needs ``key``).
        key: requests must be sealed with it (HMAC-SHA256); None: none (ipc only).
        journal: the file of client ids (:class:`~hkrt.trader.journal.TraderJournal`); None: memory only.
        guard: the broker's ``broker_last_datetime`` at start (``"now"``: the China wall clock, so no order
            dated earlier reaches it; None: no guard but the one each strategy sends with its orders).
    """

    def __init__(
        self,
        broker: OrderBrokerBase,
        address: str,
        *,
        key: bytes | None = None,
        journal: str | Path | None = None,
        guard: str | dt.datetime | None = "now",
        max_queue: int = MAX_QUEUE,
        ring_events: int = RING_EVENTS,
    ) -> None:
        check_address(address, key)
        self.broker = broker
        self.address = address
        self.key = key
        self.journal = TraderJournal(journal)
        self.epoch = secrets.token_hex(8)  # this run's: a client seeing another one knows the trader restarted
        self.reports = callable(getattr(broker, "attach", None))
        if guard == "now":
            from hkrt.core.china_time import china_now

            broker.broker_last_datetime = china_now()
        elif isinstance(guard, dt.datetime):
            broker.broker_last_datetime = guard
        self.stats: dict[str, int] = dict.fromkeys(
            ("requests", "auth_refused", "bad_requests", "submits", "duplicates", "cancels", "asset_queries",
             "spot_batches", "queue_full", "market_dropped", "reports", "events", "broker_errors"), 0,
        )  # fmt: skip
        self._orders: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.Queue(max_queue)
        self._assets: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.Queue(100)
        self._events: deque[dict[str, Any]] = deque(maxlen=ring_events)
        self._seq = 0
        self._events_lock = threading.Lock()
        self._sessions: OrderedDict[str, int] = OrderedDict()  # session -> the last item id acted on
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socket: pynng.Rep0 | None = None
        self._bus: EventBus | None = None
        self._limiter = LogLimiter(_WARN_INTERVAL)
        self.busy_since: float | None = None  # monotonic start of the broker call running now
        self.loop_at = time.monotonic()  # when the request loop last turned (a heartbeat tells a frozen one)
        # called on the order worker after each of its items (a paper account written to disk); must be quick
        self.after_work: Callable[[], None] | None = None
        # True: the events an order-worker item makes are served only after its after_work (what a client sees
        # is on disk first); events of other threads go out at once unless an item is under way
        self.hold_events = False
        self._in_item = False
        self._released = 0  # the newest event seq served
        self._acked: dict[str, int] = {}  # session -> the newest seq it asked after (it has the events up to it)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> TraderServer:
        import pynng

        if self.reports:
            self._bus = EventBus(name=f"trader-{self.broker.name}").start()
            self._bus.subscribe(ExecutionReport, self._on_report, name="trader.reports")
            self.broker.attach(self._bus)  # type: ignore[attr-defined]
            self._adopt_todays_orders()
        sock = pynng.Rep0(recv_timeout=200, send_timeout=1000)
        sock.recv_max_size = 64 << 20
        sock.listen(self.address)
        if self.address.startswith("ipc://") and os.name == "posix":
            os.chmod(self.address[len("ipc://") :], 0o600)  # the owner's alone, wherever the path is
        self._socket = sock
        for target, args, name in ((self._serve, (), "requests"), (self._worker, (self._orders, True), "orders"),
                                   (self._worker, (self._assets, False), "asset")):  # fmt: skip
            t = threading.Thread(target=target, args=args, name=f"trader-{self.broker.name}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("trader serving", extra={"broker": self.broker.name, "address": self.address, "epoch": self.epoch,
                                          "unknown_orders": self.journal.unknown})  # fmt: skip
        return self

    def _adopt_todays_orders(self) -> None:
        """Today's orders an earlier run of this trader sent: the broker reports their fills and cancels too
        (``adopt_order(broker_order_id, client_order_id, symbol, side)``, the brokers with venue reports)."""
        adopt = getattr(self.broker, "adopt_order", None)
        if not callable(adopt):
            return
        from hkrt.core.china_time import china_today

        orders = self.journal.sent_on(china_today().isoformat())
        for cid, entry in orders:
            adopt(entry.order_id, cid, entry.symbol, entry.side)
        if orders:
            log.info("trader took over today's orders of its earlier run", extra={"orders": len(orders)})

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for q in (self._orders, self._assets):
            with contextlib.suppress(queue.Full):  # a full queue: the worker sees _stop after its item
                q.put_nowait(None)
        for t in self._threads:
            t.join(timeout)
        if self._socket is not None:
            self._socket.close()
        if self._bus is not None:
            self._bus.stop()
        self.journal.close()

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (the CLI's Ctrl-C / SIGTERM)."""
        while not stop.wait(0.2):
            pass

    # ---------------------------------------------------------------- events
    def _emit(self, owner: str, event: dict[str, Any]) -> None:
        with self._events_lock:
            self._seq += 1
            event["seq"] = self._seq
            event["owner"] = owner
            self._events.append(event)
            self.stats["events"] += 1
            if not (self.hold_events and self._in_item):
                self._released = self._seq

    def _events_for(self, session: str, after: int) -> tuple[list[dict[str, Any]], int, int]:
        with self._events_lock:
            first = self._events[0]["seq"] if self._events else self._seq + 1
            upto = self._released  # events of an order-worker item are served once after_work kept its outcome
            out = []
            if after < upto:
                start = max(0, len(self._events) - (self._seq - after))
                for i in range(start, len(self._events)):
                    e = self._events[i]
                    if e["seq"] > upto:
                        break
                    if e["owner"] in (session, ""):
                        out.append(e)
                        if len(out) >= MAX_EVENTS_PER_REPLY:
                            return out, e["seq"], first
            return out, upto, first

    def unacknowledged_events(self) -> list[dict[str, Any]]:
        """The events (oldest first) whose session has not yet asked for something after them: what a client
        may not have received (a trader that keeps its outcome on disk keeps these with it)."""
        with self._events_lock:
            floor = min(self._acked.values(), default=0)
            out = []
            for e in reversed(self._events):
                if e["seq"] <= floor:
                    break
                if e["owner"] and e["seq"] > self._acked.get(e["owner"], 0):
                    out.append(e)
            return out[::-1]

    def reemit(self, events: list[dict[str, Any]]) -> None:
        """Emit ``events`` of an earlier run again (their sessions ask this new epoch from its start)."""
        for e in events:
            self._emit(str(e.get("owner", "")), {k: v for k, v in e.items() if k not in ("seq", "owner")})

    def _on_report(self, report: ExecutionReport) -> None:
        cid = report.client_order_id or (self.journal.cid_of(report.broker_order_id) if report.broker_order_id else "")
        entry = self.journal.get(cid) if cid else None
        data = report_to_dict(report)
        data["client_order_id"] = cid
        self.stats["reports"] += 1
        self._emit(entry.owner if entry is not None else "", {"type": "report", "report": data})

    # ---------------------------------------------------------------- requests
    def _serve(self) -> None:
        assert self._socket is not None
        serve_replies(self._socket, self._stop, self._reply, self._turned)

    def _turned(self) -> None:
        self.loop_at = time.monotonic()  # the heartbeat file tells a turning loop from a frozen one

    def _reply(self, data: bytes) -> bytes:
        """The encoded answer to one request; a refused or failing request is an error reply, never an exception
        (a reply lost on its way: the client re-asks from its last seen event, so nothing is lost with it)."""
        try:
            return self._handle(data)
        except ProtocolError as err:
            refused = "authentication" in str(err)
            self.stats["auth_refused" if refused else "bad_requests"] += 1
            log_limited(log, logging.WARNING, "refused", f"trader request refused: {err}",
                        {"broker": self.broker.name, "auth_refused": self.stats["auth_refused"]},
                        _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
            return AUTH_REFUSED if refused else encode({"v": 1, "error": str(err)}, self.key)
        except Exception as err:  # a defect costs this request, never the loop
            log.exception("trader request failed")
            return encode({"v": 1, "error": f"{type(err).__name__}: {err}"}, self.key)

    def _handle(self, data: bytes) -> bytes:
        message = decode(data, self.key)  # authentication before anything else is read
        self.stats["requests"] += 1
        session = str(message.get("session", ""))
        if not session:
            raise ProtocolError("a request needs a session")
        after = message.get("after")
        if after is None:  # a client's first contact: what happened before it came is not its business
            with self._events_lock:
                after = self._released
                self._acked[session] = int(after)
        elif session in self._sessions:  # it has every event up to `after` (it asks from its last one seen);
            # a session new to this run counts from an earlier run's events: it has none of ours yet
            with self._events_lock:
                self._acked[session] = max(self._acked.get(session, 0), min(int(after), self._released))
        last = self._sessions.get(session, 0)
        for item in message.get("items", []):
            iid = int(item["id"])
            if iid <= last:
                if item.get("op") == "submit":
                    self.stats["duplicates"] += 1
                continue  # acted on already (a re-sent request whose reply was lost)
            last = self._sessions[session] = iid  # seen, whatever becomes of it: never acted on twice
            try:
                self._take(session, item)
            except (KeyError, TypeError, ValueError) as err:  # one unreadable item costs itself, loudly
                self._bad_item(session, item, err)
        self._sessions[session] = last
        self._sessions.move_to_end(session)
        while len(self._sessions) > MAX_SESSIONS:
            gone, _ = self._sessions.popitem(last=False)
            with self._events_lock:
                self._acked.pop(gone, None)
        events, upto, first = self._events_for(session, int(after))
        busy = self.busy_since
        reply = {
            "v": 1, "epoch": self.epoch, "broker": self.broker.name, "taken": last, "events": events, "last": upto,
            "first": first, "queued": self._orders.qsize() + self._reports_pending(),
            "busy": round(time.monotonic() - busy, 3) if busy is not None else 0.0,
        }  # fmt: skip
        if message.get("status"):  # a supervisor's probe (trader_status): the counters too
            reply["stats"] = dict(self.stats)
        return encode(reply, self.key)

    def _bad_item(self, session: str, item: dict[str, Any], err: Exception) -> None:
        self.stats["bad_requests"] += 1
        why = f"the trader cannot read this {item.get('op')!r} item ({type(err).__name__}: {err}): not acted on"
        log_limited(log, logging.WARNING, "bad_item", why, {"broker": self.broker.name,
                    "bad_requests": self.stats["bad_requests"]}, _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
        request = item.get("request")
        cid = request.get("client_order_id") if isinstance(request, dict) else None
        if item.get("op") == "submit" and cid:  # its order is answered: rejected, never sent
            self._emit(session, {"type": "result", "cid": str(cid), "status": "Rejected", "order_id": "", "error": why})

    def _reports_pending(self) -> int:
        """Broker reports on the trader's bus not yet made events (a client's flush waits for them too)."""
        bus = self._bus
        if bus is None:
            return 0
        return bus.depth + (1 if bus.running_handler is not None else 0)

    def _take(self, session: str, item: dict[str, Any]) -> None:
        op = item.get("op")
        if op == "submit":
            self._take_submit(session, item)
        elif op == "cancel":
            self.stats["cancels"] += 1
            self._queue(session, self._cancel, (session, str(item["order_id"])), f"cancel of {item['order_id']}")
        elif op == "asset":
            self.stats["asset_queries"] += 1
            try:
                self._assets.put_nowait((self._asset, (session, int(item["id"]))))
            except queue.Full:
                self._emit(session, {"type": "asset", "id": item["id"], "text": "", "error": "trader busy"})
        elif op == "spots":
            batch = SpotBatch.from_message(base64.b64decode(item["message"]))
            self.stats["spot_batches"] += 1
            self._queue(session, self._market, (batch,), None)
        elif op == "day_closed":
            event = DayClosed(dt.date.fromisoformat(item["day"]), str(item.get("reason", "day_end")),
                              int(item.get("bars", 0)))  # fmt: skip
            self._queue(session, self._market, (event,), None)
        else:
            raise ProtocolError(f"unknown item op {op!r}")

    def _take_submit(self, session: str, item: dict[str, Any]) -> None:
        request = request_from_dict(item["request"])
        cid = request.client_order_id
        side = OrderSide.Buy if item["side"] == "buy" else OrderSide.Sell
        known = self.journal.get(cid)
        if known is not None:  # sent before (by this run or an earlier one): answered from the journal, never again
            self.stats["duplicates"] += 1
            if known.status:
                self._emit(session, self._result(cid, known.status, known.order_id, known.error, item))
            return
        guard = item.get("guard")
        if self._orders.full():
            self.stats["queue_full"] += 1
            why = f"trader queue full ({self._orders.maxsize} items wait for {self.broker.name}): never sent"
            log_limited(log, logging.WARNING, "queue_full", f"order {cid} refused: {why}",
                        {"broker": self.broker.name, "client_order_id": cid, "queue_full": self.stats["queue_full"]},
                        _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
            self._emit(session, self._result(cid, "Rejected", "", why, item))
            return
        self.stats["submits"] += 1
        when = request.datetime
        day = when.date().isoformat() if isinstance(when, dt.datetime) else ""
        self.journal.received(
            cid, session, f"{request.market}{request.code}", str(item["side"]), day
        )  # before the broker
        self._orders.put_nowait((self._submit, (session, side, request, item, guard)))

    def _queue(self, session: str, func: Callable[..., None], args: tuple[Any, ...], what: str | None) -> None:
        try:
            self._orders.put_nowait((func, args))
        except queue.Full:
            if what is None:
                self.stats["market_dropped"] += 1
                log_limited(log, logging.WARNING, "market_dropped", "trader queue full: market data dropped",
                            {"broker": self.broker.name, "dropped": self.stats["market_dropped"]},
                            _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
            else:
                self._emit(session, {"type": "cancel", "order_id": args[1], "cid": "", "status": "Failed",
                                     "error": f"trader queue full: {what} not sent"})  # fmt: skip

    @staticmethod
    def _result(cid: str, status: str, order_id: str, error: str, item: dict[str, Any]) -> dict[str, Any]:
        request = item["request"]
        return {"type": "result", "cid": cid, "status": status, "order_id": order_id, "error": error,
                "side": item["side"], "symbol": f"{request['market']}{request['code']}", "shares": request["num"],
                "price": request["price"], "datetime": request["datetime"]}  # fmt: skip

    # ---------------------------------------------------------------- workers
    def _worker(self, work_queue: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None], timed: bool) -> None:
        """Run the queue's calls one after another (``timed``: the order worker, whose call is ``busy_since``)."""
        while True:
            work = work_queue.get()
            if work is None or self._stop.is_set():
                return
            func, args = work
            if timed:
                self.busy_since = time.monotonic()
                with self._events_lock:
                    self._in_item = True
            try:
                func(*args)
            except Exception:
                self.stats["broker_errors"] += 1
                log.exception("trader work failed", extra={"broker": self.broker.name})
            finally:
                if timed:
                    self.busy_since = None
            if timed:
                self._item_done()

    def _item_done(self) -> None:
        """An order-worker item ended: its after_work, then its events are served."""
        try:
            if self.after_work is not None:
                self.after_work()
        except Exception:  # counted and logged; the orders go on
            self.stats["broker_errors"] += 1
            log_limited(log, logging.WARNING, "after_work", "trader: work after a broker call failed",
                        {"broker": self.broker.name}, _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
        finally:
            with self._events_lock:
                self._in_item = False
                self._released = self._seq

    def _submit(self, session: str, side: OrderSide, request: Any, item: dict[str, Any], guard: str | None) -> None:
        if guard:  # the strategy's own guard holds here too: no order dated before it reaches the broker
            when = dt.datetime.fromisoformat(guard)
            current = self.broker.broker_last_datetime
            if current is None or when > current:
                self.broker.broker_last_datetime = when
        try:
            result = self.broker.submit(side, request)
        except Exception as err:  # submit never raises; a broken wrapper must not lose the order
            result = OrderResult(OrderStatus.Failed, error=f"{type(err).__name__}: {err}")
        status, order_id, error = result.status.name, result.order_id or "", result.error
        self.journal.answered(request.client_order_id, status, order_id, error)
        self._emit(session, self._result(request.client_order_id, status, order_id, error, item))

    def _cancel(self, session: str, order_id: str) -> None:
        entry = self.journal.get(order_id)  # a client id: the broker's own id when it gave one
        cid = order_id if entry is not None else self.journal.cid_of(order_id)
        broker_id = entry.order_id if entry is not None and entry.order_id else order_id
        if entry is not None and entry.status == UNKNOWN:
            result = OrderResult(OrderStatus.Failed, error="the order's outcome is unknown (trader restarted)")
        else:
            result = self.broker.cancel(broker_id)
        self._emit(session, {"type": "cancel", "order_id": order_id, "cid": cid, "status": result.status.name,
                             "error": result.error, "reports": self.reports})  # fmt: skip

    def _market(self, event: SpotBatch | DayClosed) -> None:
        if isinstance(event, SpotBatch):
            on_spots = getattr(self.broker, "on_spots", None)
            if callable(on_spots):
                on_spots(event)
        else:
            on_day_closed = getattr(self.broker, "on_day_closed", None)
            if callable(on_day_closed):
                on_day_closed(event)

    def _asset(self, session: str, iid: int) -> None:
        try:
            text = self.broker.get_asset_info()
            error = "" if text else (self.broker.last_error or "the broker gave no asset info")
        except Exception as err:
            text, error = "", f"{type(err).__name__}: {err}"
        self._emit(session, {"type": "asset", "id": iid, "text": text, "error": error})
