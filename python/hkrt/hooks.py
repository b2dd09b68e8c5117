"""User callbacks of a running agent, run on one dedicated thread, in order.

The receiving thread never runs user code: it queues events, and the dispatcher thread
calls the hooks one event at a time.  An exception in a hook is logged with its traceback
and counted; the agent keeps going.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from hkrt.ktype import KType

log = logging.getLogger("hkrt.agent")

KTYPES = list(KType)


class Bar(NamedTuple):
    """A completed bar: right label, OHLC in yuan, volume in shares, amount in yuan."""

    datetime: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float


@dataclass(frozen=True)
class CycleInfo:
    """One publisher cycle as the agent received it."""

    publisher_id: int
    cycle_id: int
    parts_expected: int
    parts_received: int
    spots: int
    accepted: int
    complete: bool  # every part arrived
    joined_mid_cycle: bool  # the agent started listening after the cycle's first part
    market_time: dt.datetime | None  # the data time the cycle reached (China local)
    sent_at_ms: float  # publisher's send time of the cycle's first part (UTC epoch ms)
    latency_ms: float  # publisher send of the first part -> last part processed


@dataclass(frozen=True)
class GapInfo:
    """Messages of a publisher that never arrived."""

    publisher_id: int
    expected_sequence: int
    received_sequence: int
    missing: int


@dataclass
class _BarHook:
    func: Callable[[str, KType, Bar], Any]
    ktypes: frozenset[int] | None
    symbols: frozenset[bytes] | None


@dataclass
class HookSet:
    spot: list[Callable[[Any], Any]] = field(default_factory=list)
    columns: list[Callable[[dict[str, np.ndarray]], Any]] = field(default_factory=list)
    bar: list[_BarHook] = field(default_factory=list)
    bars: list[Callable[[np.ndarray], Any]] = field(default_factory=list)
    cycle: list[Callable[[CycleInfo], Any]] = field(default_factory=list)
    gap: list[Callable[[GapInfo], Any]] = field(default_factory=list)

    def add_bar(
        self,
        func: Callable[[str, KType, Bar], Any],
        ktypes: Iterable[KType | str] | None,
        symbols: Iterable[str] | None,
    ) -> None:
        from hkrt._hkrt import normalize_symbol

        kset = None if ktypes is None else frozenset(KTYPES.index(KType.parse(k)) for k in ktypes)
        sset = None if symbols is None else frozenset(normalize_symbol(s).encode() for s in symbols)
        self.bar.append(_BarHook(func, kset, sset))

    @property
    def wants_bars(self) -> bool:
        return bool(self.bar or self.bars)


class Dispatcher:
    """The callback thread: takes queued events and runs the hooks for each, in order."""

    def __init__(self, hooks: HookSet) -> None:
        self.hooks = hooks
        self.errors = 0
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hkrt-callbacks", daemon=True)
        self._thread.start()

    def put(self, kind: str, payload: Any) -> None:
        self._queue.put((kind, payload))

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float = 5.0) -> None:
        """Run what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            kind, payload = event
            if kind == "bars":
                self._bars(payload)
            elif kind == "spots":
                for s in payload:
                    self._call(self.hooks.spot, s)
            elif kind == "columns":
                self._call(self.hooks.columns, payload)
            elif kind == "cycle":
                self._call(self.hooks.cycle, payload)
            elif kind == "gap":
                self._call(self.hooks.gap, payload)
            elif kind == "call":  # a barrier: tells a waiter all earlier events are done
                payload()

    def _bars(self, records: np.ndarray) -> None:
        self._call(self.hooks.bars, records)
        for hook in self.hooks.bar:
            for rec in records:
                if hook.ktypes is not None and int(rec["ktype"]) not in hook.ktypes:
                    continue
                if hook.symbols is not None and bytes(rec["symbol"]) not in hook.symbols:
                    continue
                bar = Bar(
                    rec["datetime"].astype("datetime64[ms]").item(),
                    float(rec["open"]),
                    float(rec["high"]),
                    float(rec["low"]),
                    float(rec["close"]),
                    float(rec["volume"]),
                    float(rec["amount"]),
                )
                self._call([hook.func], bytes(rec["symbol"]).decode(), KTYPES[int(rec["ktype"])], bar)

    def _call(self, funcs: Iterable[Callable[..., Any]], *args: Any) -> None:
        for func in funcs:
            try:
                func(*args)
            except Exception:
                self.errors += 1
                log.exception("callback %s raised; the agent goes on", getattr(func, "__qualname__", func))
