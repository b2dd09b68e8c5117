"""``RemoteBroker``: the strategy's side of a broker hosted by ``hkrt trader`` (docs/trader-process.md).

``submit`` and ``cancel`` never wait on the broker: the request goes into a bounded outbox and the call returns
``Sent``; a background thread sends the outbox over nng and polls the trader for what happened, and publishes
it on the strategy's bus as :class:`~hkrt.bus.trading.ExecutionReport` (the broker's answer: ``accepted`` or
``rejected`` with its reason; then its own reports: fills, ``cancelled``, ``expired``), so the strategy's order
manager moves the order exactly as with a broker that reports.  ``get_asset_info`` waits at most
``asset_timeout`` seconds.

Loss is never silent:

- outbox full: the order is refused at once (``Rejected``, the reason names the bound), counted, WARNING;
- the trader unreachable: requests wait in the outbox, the socket redials with backoff; an order that could not
  be handed over within ``send_timeout`` seconds is reported ``rejected`` (never sent);
- a reply lost: the client asks again from its last seen event (the trader acts on each item once);
- the trader restarted (a new epoch): the orders it had taken and not answered are sent again, and the new
  trader answers them from its journal by client id (never sending one twice: an order the old trader was
  sending when it died is reported ``rejected`` with "outcome unknown, check the account"); reports the old
  trader had not delivered are gone with it: counted, WARNING, reconcile the book;
- events older than the trader's ring when asked for: counted as ``lost_events``, WARNING.

``forward_market=True`` (a paper broker in the trader): the strategy's spots and day closes are sent along with
the orders, in the order the bus delivered them, so the paper broker matches exactly as it would in-process.
"""

from __future__ import annotations

import atexit
import base64
import logging
import secrets
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus
from hkrt.bus.trading import ExecutionReport
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.trader.protocol import (
    AUTH_REFUSED,
    MAX_ITEMS_PER_REQUEST,
    ProtocolError,
    check_address,
    decode,
    encode,
    report_from_dict,
    request_to_dict,
)

if TYPE_CHECKING:
    import pynng

    from hkrt.bus import EventBus, Subscription
    from hkrt.bus.events import DayClosed, SpotBatch

log = logging.getLogger("hkrt.trader")

MAX_OUTBOX = 1_000
MAX_MARKET = 2_000
MAX_UNDELIVERED = 10_000
MAX_BACKLOG = 5_000  # reports waiting for the strategy's bus before the sender stops taking more from the trader
_WARN_INTERVAL = 60.0
_FAST_POLL = 0.002  # seconds between polls while an answer is due soon
_FAST_POLL_FOR = 0.5  # seconds after a send that polls stay fast (a hung broker then costs poll_interval)
_LIVE: weakref.WeakSet[RemoteBroker] = weakref.WeakSet()
_exit_hook: list[bool] = []


def _stop_at_exit() -> None:
    """The process is ending: the background threads stop asking (a socket torn down under a request would
    otherwise read as a trader that stopped answering, a false WARNING at every strategy's end)."""
    for broker in list(_LIVE):
        broker._stop.set()


def _hook_exit() -> None:
    """Register :func:`_stop_at_exit` after pynng is imported: exit hooks run last-registered first, so it runs
    before pynng's own teardown of the sockets."""
    if not _exit_hook:
        import pynng  # noqa: F401

        atexit.register(_stop_at_exit)
        _exit_hook.append(True)


class RemoteBroker(OrderBrokerBase):
    """A broker in an ``hkrt trader`` process at ``address`` (see the module docstring).

    Args:
        address: the trader's ``ipc://`` or ``tcp://127.0.0.1:PORT`` address.
        name: this broker's name (the strategy's orders and reports carry it).
        key: the trader's key (required on TCP); None with ipc.
        max_outbox: requests waiting to be taken by the trader at most; a submit past it is refused.
        send_timeout: seconds an order may wait for the trader before it is reported rejected (never sent).
        asset_timeout: seconds ``get_asset_info`` waits for the account.
        poll_interval: seconds between two polls when nothing is sent.
        forward_market: send the bus's spots and day closes to the trader (for a paper broker there).
    """

    def __init__(
        self,
        address: str,
        *,
        name: str = "remote",
        key: bytes | None = None,
        max_outbox: int = MAX_OUTBOX,
        send_timeout: float = 30.0,
        asset_timeout: float = 5.0,
        poll_interval: float = 0.05,
        request_timeout: float = 2.0,
        forward_market: bool = False,
        max_market: int = MAX_MARKET,
        market_wait: float = 30.0,
    ) -> None:
        super().__init__(name)
        check_address(address, key)
        if max_outbox < 1:
            raise ValueError(f"max_outbox must be >= 1, not {max_outbox}")
        self.address, self.key, self.forward_market = address, key, forward_market
        self.max_outbox, self.max_market, self.market_wait = max_outbox, max_market, market_wait
        self.send_timeout, self.asset_timeout = send_timeout, asset_timeout
        self.poll_interval, self.request_timeout = poll_interval, request_timeout
        self.stats: dict[str, int] = dict.fromkeys(
            ("submitted", "cancels", "outbox_full", "market_dropped", "never_sent", "requests", "request_failures",
             "reconnects", "trader_restarts", "lost_events", "reports", "results", "rejected", "cancel_failures",
             "asset_timeouts", "asset_busy", "backlog_pauses", "auth_refused", "undelivered"), 0,
        )  # fmt: skip
        self.connected = False
        self.last_trader_error = ""
        self._session = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # market data waits here for room in the outbox
        self._waiting = 0  # order requests (submit, cancel, asset) in the outbox
        self._market_waiting = 0  # market data items in the outbox
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_id = 0
        self._outbox: deque[dict[str, Any]] = deque()  # items the trader has not taken yet, oldest first
        self._inflight: dict[str, dict[str, Any]] = {}  # client id -> its submit, taken and not answered
        self._assets: dict[int, list[Any]] = {}  # item id -> [threading.Event, text, error]
        self._late_asset: list[Any] | None = None  # the waiter of a query that timed out
        self._undelivered: deque[ExecutionReport] = deque(maxlen=MAX_UNDELIVERED)  # made while no bus runs
        self._deliveries: deque[ExecutionReport] = deque()  # for the delivery thread (the backlog is bounded:
        self._delivery = threading.Condition()  # past MAX_BACKLOG the sender leaves events at the trader)
        self._epoch: str | None = None
        self._last_seq = 0
        self._replies = 0
        self._idle_replies = 0  # replies showing the trader idle and everything delivered
        self._bus: EventBus | None = None
        self._subscriptions: list[Subscription] = []
        self._limiter = LogLimiter(_WARN_INTERVAL)
        self._thread: threading.Thread | None = None
        self._start()

    # ---------------------------------------------------------------- the broker's hooks (_buy, _sell below)
    def _hand_over(self, side: str, request: OrderRequest) -> OrderResult:
        if not request.client_order_id:  # a hikyuu-style call: the trader dedups by client id, so give one
            request = OrderRequest(
                request.datetime, request.market, request.code, request.price, request.num, request.stoploss,
                request.goal_price, request.part_from, request.remark, client_order_id=self._new_cid(),
                order_type=request.order_type, time_in_force=request.time_in_force,
            )  # fmt: skip
        guard = self.broker_last_datetime
        item = {"op": "submit", "side": side, "request": request_to_dict(request),
                "guard": guard.isoformat() if guard is not None else None}  # fmt: skip
        if not self._put(item):
            self.stats["outbox_full"] += 1
            why = (f"outbox to the trader full ({self.max_outbox} requests wait: the trader at {self.address} is "
                   "not taking them): never sent")  # fmt: skip
            log_limited(log, logging.WARNING, "outbox_full", f"order {request.client_order_id} refused: {why}",
                        {"broker": self.name, "client_order_id": request.client_order_id,
                         "outbox_full": self.stats["outbox_full"]}, _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
            return OrderResult(OrderStatus.Rejected, error=why)
        self.stats["submitted"] += 1
        return OrderResult(OrderStatus.Sent, order_id=None)

    def _sell(self, request: OrderRequest) -> OrderResult:  # the C++ base's hooks, after its guard and id checks
        return self._hand_over("sell", request)

    def _buy(self, request: OrderRequest) -> OrderResult:
        return self._hand_over("buy", request)

    def _cancel(self, order_id: str) -> OrderResult:
        if not self._put({"op": "cancel", "order_id": order_id}):
            self.stats["outbox_full"] += 1
            return OrderResult(OrderStatus.Failed, error=f"outbox to the trader full ({self.max_outbox}): not sent")
        self.stats["cancels"] += 1
        return OrderResult(OrderStatus.Sent, order_id=order_id)

    def _get_asset_info(self) -> str:
        """The account, waiting at most ``asset_timeout``.  While a query that timed out is still unanswered
        (the broker sits on it), the next one fails at once instead of waiting again: a reconcile on the
        callback thread costs the strategy one timeout, not one per try."""
        waiter: list[Any] = [threading.Event(), "", ""]
        with self._lock:
            late = self._late_asset
            if late is not None and not late[0].is_set():
                self.stats["asset_busy"] += 1
                raise TimeoutError(f"the trader at {self.address} has not answered the previous asset query yet "
                                   "(its broker is slow): not asked again")  # fmt: skip
            self._waiting += 1
            iid = self._append({"op": "asset"})
            self._assets[iid] = waiter
        self._wake.set()
        if not waiter[0].wait(self.asset_timeout):
            with self._lock:
                self._late_asset = waiter  # still registered: its answer, whenever it comes, frees the next query
            self.stats["asset_timeouts"] += 1
            raise TimeoutError(f"the trader at {self.address} gave no asset info within {self.asset_timeout:g} s")
        if not waiter[1]:
            raise RuntimeError(waiter[2] or "the trader gave no asset info")
        return str(waiter[1])

    def _new_cid(self) -> str:
        with self._lock:
            self._next_id += 1
            return f"{self.name}-{self._session}-{self._next_id}"

    def _append(self, item: dict[str, Any]) -> int:
        self._next_id += 1
        item["id"] = self._next_id
        item["_queued"] = time.monotonic()
        item["_tried"] = False  # in a request that went out
        item["_maybe"] = False  # in a request that went out and got no answer: the trader may have read it
        self._outbox.append(item)
        return self._next_id

    def _put(self, item: dict[str, Any]) -> bool:
        """Queue an order request; False when ``max_outbox`` of them wait already (never waits)."""
        with self._lock:
            if self._waiting >= self.max_outbox:
                return False
            self._waiting += 1
            self._append(item)
        self._wake.set()
        return True

    def _put_market(self, item: dict[str, Any]) -> bool:
        """Queue market data for the trader's paper broker, in bus order.  Past ``max_market`` waiting, the
        callback thread waits for room (up to ``market_wait`` s): the paper broker then sees every spot, as
        it would in-process, at the pace the trader takes them; False (dropped) only after that wait."""
        item["_market"] = True
        with self._room:
            if self._market_waiting >= self.max_market and not self._room.wait_for(
                lambda: self._market_waiting < self.max_market or self._stop.is_set(), self.market_wait
            ):
                return False
            self._market_waiting += 1
            self._append(item)
        self._wake.set()
        return True

    # ---------------------------------------------------------------- the bus
    def attach(self, bus: EventBus) -> None:
        """Publish the trader's reports on ``bus`` (those made while none was attached go out now); with
        ``forward_market``, send the bus's spots and day closes to the trader."""
        from hkrt.bus.events import DayClosed, SpotBatch

        self.detach()
        self._bus = bus
        if self.forward_market:
            self._subscriptions = [
                bus.subscribe(SpotBatch, self._on_spots, name=f"{self.name}.spots"),
                bus.subscribe(DayClosed, self._on_day_closed, name=f"{self.name}.day_closed"),
            ]
        while self._undelivered and bus.running:
            bus.publish(self._undelivered.popleft())

    def detach(self) -> None:
        """Stop publishing here (reports made meanwhile wait for the next attach) and stop forwarding."""
        bus, self._bus = self._bus, None
        subscriptions, self._subscriptions = self._subscriptions, []
        if bus is not None:
            for sub in subscriptions:
                bus.unsubscribe(sub)

    def _on_spots(self, batch: SpotBatch) -> None:
        message = batch.message
        if message is None:
            from hkrt.feed.wire import encode_spots

            message = encode_spots(list(batch.spots))
        if not self._put_market({"op": "spots", "message": base64.b64encode(message).decode("ascii")}):
            self._market_dropped()

    def _on_day_closed(self, event: DayClosed) -> None:
        if not self._put_market({"op": "day_closed", "day": event.day.isoformat(), "reason": event.reason,
                                 "bars": event.bars}):  # fmt: skip
            self._market_dropped()

    def _market_dropped(self) -> None:
        self.stats["market_dropped"] += 1
        log_limited(log, logging.WARNING, "market_dropped",
                    "outbox to the trader full: market data for its paper broker dropped",
                    {"broker": self.name, "dropped": self.stats["market_dropped"]}, _WARN_INTERVAL,
                    limiter=self._limiter)  # fmt: skip

    def _publish(self, report: ExecutionReport) -> None:
        """Hand a report to the delivery thread (the sender never waits on a full bus: it keeps draining the
        outbox, which the callback thread may be waiting on)."""
        self.stats["reports"] += 1
        with self._delivery:
            self._deliveries.append(report)
            self._delivery.notify()

    def _deliver(self) -> None:
        """The delivery thread: publish each report on the attached bus, in order (waiting while it is full);
        with no running bus, keep it for the next attach."""
        while True:
            with self._delivery:
                while not self._deliveries and not self._stop.is_set():
                    self._delivery.wait(0.5)
                if not self._deliveries:
                    return
                report = self._deliveries[0]
            bus = self._bus
            if not (bus is not None and bus.running and bus.publish(report)):
                self.stats["undelivered"] += 1
                self._undelivered.append(report)  # published at the next attach
            with self._delivery:
                self._deliveries.popleft()

    # ---------------------------------------------------------------- the background thread
    def _start(self) -> None:
        _hook_exit()
        _LIVE.add(self)
        self._thread = threading.Thread(target=self._run, name=f"remote-broker-{self.name}", daemon=True)
        self._thread.start()
        self._deliverer = threading.Thread(target=self._deliver, name=f"remote-broker-{self.name}-deliver", daemon=True)
        self._deliverer.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread (requests still in the outbox stay unsent)."""
        self._stop.set()
        self._wake.set()
        with self._room:
            self._room.notify_all()
        with self._delivery:
            self._delivery.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._deliverer.join(timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the trader took every request, answered every order and is idle, and its events are
        delivered (a test's or a run's end); False at the timeout."""
        deadline = time.monotonic() + timeout
        start = self._idle_replies
        while time.monotonic() < deadline:
            with self._lock:
                done = not self._outbox and not self._inflight and self._idle_replies >= start + 2
            done = done and not self._deliveries
            if done:
                return True
            self._wake.set()
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        import pynng

        backoff = 0.1
        last_send = 0.0
        sock = self._open(pynng)
        while not self._stop.is_set():
            with self._lock:
                expired = self._expire_unsent()
                items = list(self._outbox)[:MAX_ITEMS_PER_REQUEST]
            if expired:  # outside the lock: publishing may wait for room on the bus
                why = f"the trader at {self.address} was unreachable for {self.send_timeout:g} s: never sent"
                for item in expired:
                    self._fail(item, why)
            after = self._last_seq if self._epoch is not None else None  # None: from now on (first contact)
            message = {"v": 1, "session": self._session, "after": after,
                       "items": [{k: v for k, v in i.items() if not k.startswith("_")} for i in items]}  # fmt: skip
            self.stats["requests"] += 1
            try:
                sock.send(encode(message, self.key))
                for i in items:
                    i["_tried"] = True
                data = sock.recv()
            except pynng.NNGException as err:
                for i in items:  # sent and never answered: the trader may have read them
                    i["_maybe"] = i["_maybe"] or i["_tried"]
                if self._stop.is_set():
                    break  # closed, or the process is ending
                self._down(f"{type(err).__name__}: {err}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                if isinstance(err, pynng.Timeout) and items:  # a stuck request: a fresh socket redials
                    sock.close()
                    sock = self._open(pynng)
                continue
            backoff = 0.1
            try:
                reply = decode(data, self.key)
            except ProtocolError as err:
                self._refused("" if data == AUTH_REFUSED else str(err))  # "": the trader refused our key
                self._stop.wait(1.0)
                continue
            if "error" in reply:  # (without a key, the trader's refusal of a missing key reads as this)
                self._refused("" if data == AUTH_REFUSED else str(reply["error"]))
                self._stop.wait(1.0)
                continue
            self._up()
            more = self._apply(reply, items)
            if items:
                last_send = time.monotonic()
            if not more:
                # an answer due soon (orders at the trader, sent in the last half second): ask again shortly
                waiting = bool(self._inflight) or bool(reply.get("queued")) or bool(reply.get("busy"))
                soon = waiting and time.monotonic() - last_send < _FAST_POLL_FOR
                self._wake.wait(min(self.poll_interval, _FAST_POLL) if soon else self.poll_interval)
                self._wake.clear()
        sock.close()

    def _open(self, pynng: Any) -> pynng.Req0:
        ms = int(self.request_timeout * 1000)
        sock = pynng.Req0(recv_timeout=ms, send_timeout=ms, resend_time=-1)
        sock.recv_max_size = 64 << 20
        sock.dial(self.address, block=False)
        return sock

    def _down(self, why: str) -> None:
        self.stats["request_failures"] += 1
        self.last_trader_error = why
        if self.connected:
            self.connected = False
            self.stats["reconnects"] += 1
        log_limited(log, logging.WARNING, "down", f"trader at {self.address} not answering ({why}): retrying",
                    {"broker": self.name, "address": self.address, "outbox": len(self._outbox),
                     "request_failures": self.stats["request_failures"]}, _WARN_INTERVAL,
                    limiter=self._limiter)  # fmt: skip

    def _up(self) -> None:
        if not self.connected:
            self.connected = True
            log.info("trader connected", extra={"broker": self.name, "address": self.address})

    def _refused(self, why: str) -> None:
        """The trader refused the request: authentication (``why`` "") or a message it cannot read; every
        order waiting is reported rejected (never sent) and the outbox emptied."""
        if not why:
            self.stats["auth_refused"] += 1
            why = f"the trader at {self.address} refused authentication (wrong or missing key): never sent"
        else:
            why = f"the trader at {self.address} refused the request ({why}): never sent"
        self.last_trader_error = why
        log_limited(log, logging.WARNING, "refused", why, {"broker": self.name, "address": self.address},
                    _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
        with self._lock:
            items = list(self._outbox)
            self._outbox.clear()
            for item in items:
                self._taken_out(item)
        maybe = why.replace(
            ": never sent", ": it was handed to a trader before, which may have sent it; check the account"
        )
        for item in items:
            self._fail(item, maybe if item["_maybe"] else why)

    def _fail(self, item: dict[str, Any], why: str) -> None:
        if item["op"] == "submit":
            request = item["request"]
            self.stats["rejected"] += 1
            self._publish(ExecutionReport(broker=self.name, kind="rejected", client_order_id=request["client_order_id"],
                                          symbol=f"{request['market']}{request['code']}", side=item["side"],
                                          reason=why))  # fmt: skip
        elif item["op"] == "asset":
            waiter = self._assets.pop(item["id"], None)
            if waiter is not None:
                waiter[1:] = ["", why]
                waiter[0].set()
        elif item["op"] == "cancel":
            self.stats["cancel_failures"] += 1
            log.warning("cancel of %s not sent: %s", item["order_id"], why,
                        extra={"broker": self.name, "order_id": item["order_id"]})  # fmt: skip

    def _expire_unsent(self) -> list[dict[str, Any]]:
        """Orders never handed to the trader within ``send_timeout`` (it was unreachable), taken out of the
        outbox (under the lock) to be reported rejected, never sent.  One that was sent but not confirmed
        stays: the trader may have it, and answers it once it is back."""
        if self.connected or not self._outbox:
            return []
        now = time.monotonic()
        keep: deque[dict[str, Any]] = deque()
        expired = []
        for item in self._outbox:
            if not item["_tried"] and not item.get("_market") and now - item["_queued"] > self.send_timeout:
                expired.append(item)
            else:
                keep.append(item)
        if expired:
            self._outbox = keep
            for item in expired:
                self._taken_out(item)
            self.stats["never_sent"] += len(expired)
        return expired

    def _apply(self, reply: dict[str, Any], items: list[dict[str, Any]]) -> bool:
        """Take in one reply; True when more is waiting (send again at once)."""
        epoch = str(reply["epoch"])
        if self._epoch is not None and epoch != self._epoch:
            self._restarted(epoch)
            return True  # the events of this reply were counted from the old trader's seq: ask again from 0
        first_contact, self._epoch = self._epoch is None, epoch
        taken = int(reply.get("taken", 0))
        with self._lock:
            while self._outbox and self._outbox[0]["id"] <= taken:
                item = self._outbox.popleft()
                self._taken_out(item)
                if item["op"] == "submit":
                    self._inflight[item["request"]["client_order_id"]] = item
        first, last = int(reply.get("first", 0)), int(reply.get("last", 0))
        if not first_contact and first > self._last_seq + 1 and last > self._last_seq:
            missed = first - self._last_seq - 1
            self.stats["lost_events"] += missed
            log_limited(log, logging.WARNING, "lost_events",
                        f"{missed} trader events passed out of its ring before they were asked for (some may be "
                        "other strategies'): reconcile the book against the account",
                        {"broker": self.name, "lost_events": self.stats["lost_events"]}, _WARN_INTERVAL,
                        limiter=self._limiter)  # fmt: skip
        events = reply.get("events", [])
        if events and len(self._deliveries) >= MAX_BACKLOG:  # the strategy's bus takes no reports: ask again later
            self.stats["backlog_pauses"] += 1
            log_limited(log, logging.WARNING, "backlog",
                        f"{len(self._deliveries)} reports wait for the strategy's bus: the trader keeps the next ones "
                        "until they are taken", {"broker": self.name, "backlog_pauses": self.stats["backlog_pauses"]},
                        _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
            self._stop.wait(0.05)
            return bool(self._outbox)
        for event in events:
            self._event(event)
        self._last_seq = max(self._last_seq, last)
        self._replies += 1
        caught_up = not reply.get("events")
        if caught_up and not reply.get("queued") and not reply.get("busy"):
            self._idle_replies += 1
        with self._lock:
            return bool(self._outbox) or bool(reply.get("events"))

    def _taken_out(self, item: dict[str, Any]) -> None:
        """An item left the outbox (under the lock): its room is free again."""
        if item.get("_market"):
            self._market_waiting -= 1
            self._room.notify_all()
        else:
            self._waiting -= 1

    def _restarted(self, epoch: str) -> None:
        self.stats["trader_restarts"] += 1
        with self._lock:
            inflight = list(self._inflight.values())
            self._inflight.clear()
            queued = {item["id"] for item in self._outbox}
            for iid in [i for i in self._assets if i not in queued]:  # taken by the old trader: never answered
                waiter = self._assets.pop(iid)
                waiter[1:] = ["", "the trader restarted before answering"]
                waiter[0].set()
            for item in inflight:  # taken by the old trader, not answered: ask the new one (its journal knows)
                resend = {k: v for k, v in item.items() if not k.startswith("_") and k != "id"}
                self._waiting += 1  # may pass max_outbox: these were taken once and must not be dropped
                self._append(resend)
        log.warning("trader at %s restarted: %d orders it had taken are asked for again; reports it had not "
                    "delivered are lost with it (reconcile the book)", self.address, len(inflight),
                    extra={"broker": self.name, "address": self.address, "resent": len(inflight),
                           "trader_restarts": self.stats["trader_restarts"]})  # fmt: skip
        self._epoch = epoch
        self._last_seq = 0

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "report":
            self._publish(report_from_dict(event["report"], self.name))
        elif kind == "result":
            self._result(event)
        elif kind == "cancel":
            self._cancel_answer(event)
        elif kind == "asset":
            waiter = self._assets.pop(int(event["id"]), None)
            if waiter is not None:
                waiter[1:] = [event.get("text", ""), event.get("error", "")]
                waiter[0].set()

    def _result(self, event: dict[str, Any]) -> None:
        """The broker's answer to a submit, as reports: Sent -> accepted, Filled -> accepted + one fill of the
        whole order at its price (a legacy broker), anything else -> rejected with the broker's reason."""
        self.stats["results"] += 1
        cid, status, order_id = str(event["cid"]), str(event["status"]), str(event.get("order_id") or "")
        with self._lock:
            self._inflight.pop(cid, None)
        common = {"broker": self.name, "client_order_id": cid, "broker_order_id": order_id,
                  "symbol": event.get("symbol", ""), "side": event.get("side", "")}  # fmt: skip
        if status in ("Sent", "Filled"):
            self._publish(ExecutionReport(kind="accepted", **common))
            if status == "Filled":
                self._publish(ExecutionReport(kind="fill", shares=int(event["shares"]), price=float(event["price"]),
                                              trade_id=f"{self.name}-sync-{order_id or cid}", **common))  # fmt: skip
            return
        self.stats["rejected"] += 1
        error = str(event.get("error") or "")
        reason = f"{status}: {error}" if error else status
        if status == "unknown":
            reason = f"outcome unknown: {error}; check the account (strategy.reconcile())"
            log.warning("order %s: %s", cid, reason, extra={"broker": self.name, "client_order_id": cid})
        self._publish(ExecutionReport(kind="rejected", reason=reason, **common))

    def _cancel_answer(self, event: dict[str, Any]) -> None:
        if event.get("status") in ("Sent", "Filled"):
            if not event.get("reports") and event.get("cid"):  # the broker sends no reports: the cancel is done
                self._publish(
                    ExecutionReport(
                        broker=self.name,
                        kind="cancelled",
                        client_order_id=str(event["cid"]),
                        reason="cancelled (the broker took the cancel; it sends no reports)",
                    )
                )
            return
        self.stats["cancel_failures"] += 1
        log.warning(
            "cancel of %s refused by the trader's broker: %s",
            event.get("order_id"),
            event.get("error"),
            extra={"broker": self.name, "order_id": event.get("order_id"), "error": event.get("error")},
        )


def trader_status(address: str, *, key: bytes | None = None, timeout: float = 2.0) -> dict[str, Any]:
    """One probe of the trader at ``address`` (a supervisor's heartbeat): ``epoch`` (changes at each restart),
    ``broker``, ``queued`` (items waiting for the broker), ``busy`` (seconds the broker call under way has run:
    a hung broker shows here) and ``stats``.  Raises ``TimeoutError`` when it does not answer within ``timeout``
    and ``PermissionError`` when it refuses the key."""
    import pynng

    ms = int(timeout * 1000)
    with pynng.Req0(recv_timeout=ms, send_timeout=ms, resend_time=-1) as sock:
        sock.dial(address, block=False)
        try:
            sock.send(encode({"v": 1, "session": f"status-{secrets.token_hex(4)}", "after": None, "items": [],
                              "status": True}, key))  # fmt: skip
            data = sock.recv()
        except pynng.Timeout:
            raise TimeoutError(f"the trader at {address} did not answer within {timeout:g} s") from None
    if data == AUTH_REFUSED:
        raise PermissionError(f"the trader at {address} refused the key")
    reply = decode(data, key)
    return {k: reply[k] for k in ("epoch", "broker", "queued", "busy", "stats") if k in reply}


_TRUE = ("1", "true", "yes", "on")


def remote_broker_from_settings(values: dict[str, Any]) -> RemoteBroker:
    """``--broker remote``: a RemoteBroker from the ``[remote]`` table of ``--config`` / ``HKRT_REMOTE_*``
    (``address`` required; ``name``, ``key_file``, ``forward_market``, ``max_outbox``, ``send_timeout``,
    ``asset_timeout``); ValueError in one line naming the setting."""
    from hkrt.trader.protocol import load_key

    address = str(values.get("address") or "")
    if not address:
        raise ValueError("broker remote needs the trader's address: set HKRT_REMOTE_ADDRESS or address in [remote]"
                         " of --config (hkrt trader prints it)")  # fmt: skip
    key = load_key(values.get("key"), key_file=values.get("key_file"))
    options: dict[str, Any] = {"name": str(values.get("name") or "remote"), "key": key}
    forward = values.get("forward_market", False)
    options["forward_market"] = forward if isinstance(forward, bool) else str(forward).lower() in _TRUE
    for setting, kind in (("max_outbox", int), ("send_timeout", float), ("asset_timeout", float)):
        if values.get(setting) not in (None, ""):
            try:
                options[setting] = kind(values[setting])
            except (TypeError, ValueError):
                from hkrt.core.settings_env import setting_name

                named = setting_name(setting, values[setting])  # HKRT_REMOTE_SEND_TIMEOUT when the environment gave it
                raise ValueError(f"broker remote: {named} must be a number, not {values[setting]!r}") from None
    return RemoteBroker(address, **options)
