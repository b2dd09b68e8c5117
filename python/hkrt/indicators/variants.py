"""The indicators Chinese charting software prints differently from TA-Lib, each under its own
name so a value never silently means one or the other (docs/indicators.md, "Chinese variants").

==========  =====================================================================================
name        definition
==========  =====================================================================================
MACD_CN     TA-Lib's MACD; ``macdhist = 2 × (macd − macdsignal)``: the "MACD" bars of Tongdaxin
            and Tonghuashun.
KDJ_CN      Tongdaxin's KDJ: ``RSV = (C − LLV(L, N)) / (HHV(H, N) − LLV(L, N)) × 100``,
            ``K = SMA(RSV, M1, 1)``, ``D = SMA(K, M2, 1)``, ``J = 3K − 2D`` with Tongdaxin's
            ``SMA(X, N, M)``: ``Y = (M·X + (N − M)·Y') / N``, seeded with the first X (not 50).
            HHV/LLV read the bars there are while fewer than N, so K, D, J start on the first bar.
BOLL_CN     Tongdaxin's BOLL: ``MID = MA(C, N)``, ``UPPER/LOWER = MID ± 2 × STD(C, N)`` where
            STD is the *sample* standard deviation (divisor N − 1); TA-Lib's BBANDS uses the
            population one (divisor N), so its bands are narrower by the factor √((N − 1)/N).
==========  =====================================================================================

Each variant computes a whole series (batch) and opens a stream handle that carries it one bar
at a time, bit-identical to the batch over the same bars: MACD_CN and BOLL_CN by TA-Lib's own
streams (MACD; BBANDS with the deviation scaled by √(N/(N − 1))), KDJ_CN by one step function
that the batch and the stream both run.  TA-Lib loads on first use.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hkrt.indicators.spec import IndicatorError, Param, talib_lookback, talib_module, talib_signature

Arrays = tuple[np.ndarray, ...]


class VariantStream(Protocol):
    """What a variant's stream handle offers (TA-Lib's handles offer the same)."""

    def update(self, *bar: float) -> tuple[float, ...]: ...

    def peek(self, *bar: float) -> tuple[float, ...]: ...

    @property
    def value(self) -> tuple[float, ...]: ...

    def copy(self) -> VariantStream: ...


class Variant:
    """One named variant: the bar columns it reads (``inputs``, in argument order), its
    ``outputs``, its parameters with their defaults, and how it computes (``batch``, ``open``)."""

    name = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def defaults(self) -> tuple[tuple[str, Param], ...]:
        raise NotImplementedError

    def check(self, params: Mapping[str, Param]) -> None:
        """Refuse parameters TA-Lib would accept but the variant cannot use (one line)."""

    def lookback(self, params: Mapping[str, Param]) -> int:
        """Bars read before the first value (a stream opens on one more)."""
        return 0

    def batch(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> Arrays:
        raise NotImplementedError

    def open(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> tuple[VariantStream, Arrays]:
        """A stream handle after ``arrays``, and the batch series over them (TA-Lib's
        ``InsufficientHistory`` when they are too short to open on)."""
        raise NotImplementedError


# ------------------------------------------------------------------ MACD_CN
class _DoubledHistogram:
    """TA-Lib's MACD stream with its third output doubled."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def update(self, *bar: float) -> tuple[float, ...]:
        macd, signal, hist = self._handle.update(*bar)
        return macd, signal, 2.0 * hist

    def peek(self, *bar: float) -> tuple[float, ...]:
        macd, signal, hist = self._handle.peek(*bar)
        return macd, signal, 2.0 * hist

    @property
    def value(self) -> tuple[float, ...]:
        macd, signal, hist = self._handle.value
        return macd, signal, 2.0 * hist

    def copy(self) -> _DoubledHistogram:
        return _DoubledHistogram(self._handle.copy())


class MacdCn(Variant):
    """MACD with the histogram doubled: ``macd`` (DIF) and ``macdsignal`` (DEA) as TA-Lib's MACD,
    ``macdhist = 2 × (DIF − DEA)``."""

    name = "MACD_CN"
    inputs = ("close",)
    outputs = ("macd", "macdsignal", "macdhist")

    def defaults(self) -> tuple[tuple[str, Param], ...]:
        return talib_signature("MACD")[2]

    def lookback(self, params: Mapping[str, Param]) -> int:
        return talib_lookback("MACD", tuple(params.items()))

    def batch(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> Arrays:
        macd, signal, hist = talib_module().MACD(*arrays, **params)
        return macd, signal, 2.0 * hist

    def open(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> tuple[VariantStream, Arrays]:
        handle, (macd, signal, hist) = talib_module().stream.MACD.open_and_fill(*arrays, **params)
        return _DoubledHistogram(handle), (macd, signal, 2.0 * hist)


# ------------------------------------------------------------------ KDJ_CN
def tdx_sma(previous: float, x: float, n: int, m: int = 1) -> float:
    """Tongdaxin's ``SMA(X, N, M)`` step: ``(M·X + (N − M)·Y') / N``; the first X is its own value."""
    if math.isnan(previous):
        return x
    return (m * x + (n - m) * previous) / n


class KdjCnStream:
    """Tongdaxin's KDJ one bar at a time (the batch runs this same step over every bar).

    A bar whose N-bar range is empty (HHV = LLV: a one-price stretch, a limit-up run) has no
    RSV: K and D stay as they were (hkrt's rule; Tongdaxin's own is not documented).  A bar that
    is not finite is refused (``ValueError``) and changes nothing, as TA-Lib's streams refuse one.
    """

    __slots__ = ("_d", "_highs", "_k", "_lows", "_m1", "_m2")

    def __init__(self, n: int, m1: int, m2: int) -> None:
        self._highs: deque[float] = deque(maxlen=n)
        self._lows: deque[float] = deque(maxlen=n)
        self._m1, self._m2 = m1, m2
        self._k = self._d = math.nan

    def update(self, *bar: float) -> tuple[float, ...]:
        high, low, close = bar
        if not (math.isfinite(high) and math.isfinite(low) and math.isfinite(close)):
            raise ValueError(f"KDJ_CN: a bar that is not finite ({high}, {low}, {close}) is not history")
        self._highs.append(high)
        self._lows.append(low)
        top, bottom = max(self._highs), min(self._lows)
        if top > bottom:
            rsv = (close - bottom) / (top - bottom) * 100.0
            self._k = tdx_sma(self._k, rsv, self._m1)
            self._d = tdx_sma(self._d, self._k, self._m2)
        return self.value

    def peek(self, *bar: float) -> tuple[float, ...]:
        return self.copy().update(*bar)

    @property
    def value(self) -> tuple[float, ...]:
        k, d = self._k, self._d
        return k, d, 3.0 * k - 2.0 * d

    def copy(self) -> KdjCnStream:
        twin = KdjCnStream(self._highs.maxlen or 1, self._m1, self._m2)
        twin._highs.extend(self._highs)
        twin._lows.extend(self._lows)
        twin._k, twin._d = self._k, self._d
        return twin


class KdjCn(Variant):
    """Tongdaxin's KDJ(N=9, M1=3, M2=3) under TA-Lib's KDJ parameter names: ``fastk_period`` is
    N, ``slowk_period`` M1, ``slowd_period`` M2.  TA-Lib's own KDJ smooths the same way (Wilder's
    average is Tongdaxin's SMA(X, N, 1)) but seeds it with the mean of the first values and waits
    for N whole bars; the two meet after a few dozen bars (docs/indicators.md)."""

    name = "KDJ_CN"
    inputs = ("high", "low", "close")
    outputs = ("k", "d", "j")

    def defaults(self) -> tuple[tuple[str, Param], ...]:
        return (("fastk_period", 9), ("slowk_period", 3), ("slowd_period", 3))

    def check(self, params: Mapping[str, Param]) -> None:
        for name, value in params.items():
            if not 1 <= int(value) <= 100_000:
                raise IndicatorError(f"KDJ_CN's {name} must be from 1 to 100000, got {value!r}")

    def _stream(self, params: Mapping[str, Param]) -> KdjCnStream:
        return KdjCnStream(int(params["fastk_period"]), int(params["slowk_period"]), int(params["slowd_period"]))

    def batch(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> Arrays:
        return self.open(arrays, params)[1]

    def open(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> tuple[VariantStream, Arrays]:
        stream = self._stream(params)
        rows = len(arrays[0])
        out = np.full((3, rows), np.nan)
        for i, bar in enumerate(zip(*(a.tolist() for a in arrays), strict=True)):
            try:
                out[:, i] = stream.update(*bar)
            except ValueError:  # a bar that is not finite: NaN there, nothing carried from it
                continue
        return stream, (out[0], out[1], out[2])


# ------------------------------------------------------------------ BOLL_CN
class BollCn(Variant):
    """Tongdaxin's BOLL(N=20, P=2): ``middleband = MA(C, N)``, ``upperband``/``lowerband`` =
    middle ± P × the sample standard deviation of the last N closes.  Parameters and outputs are
    TA-Lib's BBANDS ones (``timeperiod``, ``nbdevup``, ``nbdevdn``; the moving average is always
    the simple one), so the two swap by name."""

    name = "BOLL_CN"
    inputs = ("close",)
    outputs = ("upperband", "middleband", "lowerband")

    def defaults(self) -> tuple[tuple[str, Param], ...]:
        return (("timeperiod", 20), ("nbdevup", 2.0), ("nbdevdn", 2.0))

    def check(self, params: Mapping[str, Param]) -> None:
        if int(params["timeperiod"]) < 2:
            raise IndicatorError(
                f"BOLL_CN's timeperiod must be at least 2 (a sample standard deviation needs two bars),"
                f" got {params['timeperiod']!r}"
            )

    @staticmethod
    def _bbands(params: Mapping[str, Param]) -> dict[str, Param]:
        """TA-Lib's BBANDS arguments that give the sample deviation: its population deviation ×
        √(N/(N − 1)) is the sample one, so the multipliers carry that factor."""
        n = int(params["timeperiod"])
        scale = math.sqrt(n / (n - 1))
        return {"timeperiod": n, "nbdevup": float(params["nbdevup"]) * scale,
                "nbdevdn": float(params["nbdevdn"]) * scale, "matype": 0}  # fmt: skip

    def lookback(self, params: Mapping[str, Param]) -> int:
        return talib_lookback("BBANDS", tuple(self._bbands(params).items()))

    def batch(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> Arrays:
        upper, middle, lower = talib_module().BBANDS(*arrays, **self._bbands(params))
        return upper, middle, lower

    def open(self, arrays: Sequence[np.ndarray], params: Mapping[str, Param]) -> tuple[VariantStream, Arrays]:
        handle, (upper, middle, lower) = talib_module().stream.BBANDS.open_and_fill(*arrays, **self._bbands(params))
        return handle, (upper, middle, lower)


VARIANTS: dict[str, Variant] = {v.name: v for v in (MacdCn(), KdjCn(), BollCn())}
