"""Signals and how several strategies' signals on one symbol combine into one decision (docs/signals.md).

A signal is a strategy's opinion instead of an order: ``action`` ("buy", "sell" or "flat") on a symbol
with a ``confidence`` in 0..1 (:class:`hkrt.bus.SignalEvent`, published by ``Strategy.signal``).  The
functions here are pure (no bus, no account, no clock): :class:`~hkrt.strategy.aggregator.SignalAggregator`
feeds them the latest signal of each source and turns their :class:`Decision` into orders.

Two methods, over the sources' fixed weights ``w_s`` (>= 0, at least one > 0), ``W = sum of all w_s``:

- ``vote``: score = sum(sign(action_s) x confidence_s x w_s) / W, with sign buy +1, sell -1, flat 0, and a
  source without a counted signal abstaining (0).  The score is in [-1, 1]; score >= threshold: be in the
  symbol (target 1, the full position), score <= -threshold: be out (target 0), else no decision.  The
  decision's shares go to the sources that voted its way (buys for "in", sells for "out"), in proportion
  to confidence x weight.
- ``weights``: each source holds its weight's share of the full position times its confidence while its
  latest signal is "buy", and none after "sell" or "flat" (A-shares are long only: a source cannot hold a
  short share): target = sum(w_s x t_s) / W with t_s = confidence_s for buy, else 0; the target is in
  [0, 1].  The decision's shares go to the sources whose part moved the way the target moved, in
  proportion to how much it moved.

Sums are exactly rounded (``math.fsum``), so the order of the sources never changes a result, and a
source of weight 0 changes nothing.  A score within 1e-12 of the threshold counts as reaching it.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

from hkrt._hkrt import normalize_symbol
from hkrt.bus.trading import SIGNAL_ACTIONS, SignalEvent

METHODS = ("vote", "weights")
SIGN = {"buy": 1, "sell": -1, "flat": 0}
EPSILON = 1e-12  # float noise: a score this close to the threshold reaches it, a share this small is none


def make_signal(
    strategy: str, symbol: str, action: str, confidence: float, reason: str, when: dt.datetime | None
) -> SignalEvent:
    """A checked SignalEvent: a bad symbol, action or confidence is one ValueError naming it."""
    if action not in SIGNAL_ACTIONS:
        raise ValueError(f"signal action {action!r} is not one of {', '.join(SIGNAL_ACTIONS)}")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, numbers.Real)
        or not math.isfinite(confidence)
        or not 0.0 <= confidence <= 1.0
    ):
        raise ValueError(f"signal confidence must be a number within 0..1, not {confidence!r}")
    try:
        sym = normalize_symbol(symbol)
    except (ValueError, TypeError):
        raise ValueError(f"signal symbol {symbol!r} is not a symbol (SH600000, 600000.SH or sh600000)") from None
    return SignalEvent(strategy, sym, action, float(confidence), str(reason), when)


@dataclass(frozen=True)
class Decision:
    """What the signals counted on one symbol decide.

    ``value``: the vote's score in [-1, 1], or the weights' target in [0, 1].  ``target``: the share of the
    full position wanted (1.0 in, 0.0 out, or the weights' fraction); None when a vote is under the
    threshold (no decision: the position stays).  ``shares``: source -> its share of the decision (summing
    to 1; empty when nothing moved).  ``parts``: source -> its t_s (weights: what it holds now).
    """

    method: str
    value: float
    target: float | None
    shares: dict[str, float] = field(default_factory=dict)
    parts: dict[str, float] = field(default_factory=dict)


def check_weights(weights: Mapping[str, float]) -> None:
    """One ValueError for weights that cannot be used: negative, not finite, or all zero."""
    for name, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weight of {name!r} must be a finite number >= 0, not {w!r}")
    if not weights or math.fsum(weights.values()) <= 0:
        raise ValueError("weights are all 0: at least one source must have a weight > 0")


def live_signals(
    latest: Mapping[str, SignalEvent], now: dt.datetime | None, max_age: float | None
) -> dict[str, SignalEvent]:
    """The signals still counted at ``now``: all with ``max_age`` None, else those at most ``max_age`` market
    seconds older than ``now`` (0: only those dated ``now``, the decision's own cycle).  A signal without a
    date, or a decision without a clock, always counts."""
    if max_age is None or now is None:
        return dict(latest)
    oldest = now - dt.timedelta(seconds=max_age)
    return {s: e for s, e in latest.items() if e.datetime is None or e.datetime >= oldest}


def _proportional(parts: Mapping[str, float]) -> dict[str, float]:
    """``parts`` scaled to sum to 1, the (near) zero ones left out, by name."""
    kept = {s: p for s, p in parts.items() if p > EPSILON}
    total = math.fsum(kept.values())
    return {s: kept[s] / total for s in sorted(kept)} if total > 0 else {}


def vote(signals: Mapping[str, SignalEvent], weights: Mapping[str, float], threshold: float) -> Decision:
    """The confidence-weighted vote of ``signals`` (source -> its counted signal) over the sources of
    ``weights`` (see the module)."""
    check_weights(weights)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be within (0, 1], not {threshold!r}")
    total = math.fsum(weights.values())
    votes = {s: SIGN[e.action] * e.confidence * weights.get(s, 0.0) for s, e in signals.items()}
    score = max(-1.0, min(1.0, math.fsum(votes.values()) / total))
    if score >= threshold - EPSILON:
        return Decision("vote", score, 1.0, _proportional(votes))
    if score <= -threshold + EPSILON:
        return Decision("vote", score, 0.0, _proportional({s: -v for s, v in votes.items()}))
    return Decision("vote", score, None)


def weighted_target(
    signals: Mapping[str, SignalEvent], weights: Mapping[str, float], previous: Mapping[str, float]
) -> Decision:
    """The fixed-weights target of ``signals`` (see the module); ``previous``: each source's t_s at the last
    decision acted on (the shares go to the sources whose part moved the target's way since)."""
    check_weights(weights)
    total = math.fsum(weights.values())
    parts = {s: (e.confidence if e.action == "buy" else 0.0) for s, e in signals.items() if weights.get(s, 0.0) > 0}
    target = max(0.0, min(1.0, math.fsum(weights[s] * t for s, t in parts.items()) / total))
    before = math.fsum(weights.get(s, 0.0) * t for s, t in previous.items()) / total
    moves = {s: weights[s] * (parts.get(s, 0.0) - previous.get(s, 0.0)) for s in weights}
    direction = 1.0 if target > before else -1.0
    return Decision("weights", target, target, _proportional({s: direction * m for s, m in moves.items()}), parts)
