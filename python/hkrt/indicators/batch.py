"""``indicator(name, kdata, **params)``: one indicator over a bars DataFrame, computed by TA-Lib.

The result is TA-Lib's own function applied to the frame's columns (``open``, ``high``, ``low``,
``close``, ``volume`` as :meth:`hkrt.SpotAgent.kdata` and :func:`hkrt.load_kdata` give them: prices in
yuan, volume in shares), indexed like the frame: a Series for a one-output function, a DataFrame with
TA-Lib's output names otherwise.  Values before an indicator's look-back are NaN, as TA-Lib gives them.

The variants Chinese charting software prints (``MACD_CN``, ``KDJ_CN``, ``BOLL_CN``) are in
:mod:`hkrt.indicators.variants`; live indicators, updated bar by bar, in :mod:`hkrt.indicators.live`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hkrt.indicators.spec import (
    PRICE_COLUMNS,
    IndicatorError,
    IndicatorSpec,
    talib_functions,
    talib_module,
    talib_signature,
    typed_params,
)
from hkrt.indicators.variants import VARIANTS

__all__ = ["IndicatorError", "IndicatorSpec", "indicator", "indicator_names", "resolve"]


def indicator_names() -> list[str]:
    """Every name :func:`indicator` takes: TA-Lib's functions, then hkrt's variants."""
    return sorted(talib_functions()) + sorted(VARIANTS)


def resolve(name: str, params: Mapping[str, Any]) -> IndicatorSpec:
    """The checked request ``name(**params)`` (any case), or a one-line :class:`IndicatorError`
    naming what is wrong and what is valid."""
    if not isinstance(name, str) or not name:
        raise IndicatorError(f"an indicator name is a string such as 'SMA', got {name!r}")
    key = name.upper()
    variant = VARIANTS.get(key)
    if variant is not None:
        given, full = typed_params(key, variant.defaults(), params)
        variant.check(dict(full))
        return IndicatorSpec(key, variant.inputs, variant.outputs, given, full)
    if key not in talib_functions():
        close = difflib.get_close_matches(key, indicator_names(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise IndicatorError(f"unknown indicator {key!r}{hint}: hkrt.indicators.indicator_names() lists them")
    inputs, outputs, defaults = talib_signature(key)
    given, full = typed_params(key, defaults, params)
    return IndicatorSpec(key, inputs, outputs, given, full)


def compute(spec: IndicatorSpec, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The indicator's outputs over ``arrays`` (float64, one per ``spec.inputs``), as TA-Lib's
    function (or the variant) gives them; a value TA-Lib refuses is an :class:`IndicatorError`."""
    variant = VARIANTS.get(spec.name)
    try:
        if variant is not None:
            return variant.batch(arrays, dict(spec.params))
        result = getattr(talib_module(), spec.name)(*arrays, **dict(spec.given))
    except IndicatorError:
        raise
    except Exception as e:  # TA-Lib's own check of a value (a period of 0 ...): one line, its words
        raise IndicatorError(f"{spec.describe()}: {e}") from None
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def check_values(spec: IndicatorSpec) -> None:
    """TA-Lib's own check of the parameter values (a period of 0 ...), made now on one bar."""
    compute(spec, [np.ones(1)] * len(spec.inputs))


def bar_arrays(spec: IndicatorSpec, kdata: pd.DataFrame) -> list[np.ndarray]:
    """The frame's columns the indicator reads, as contiguous float64 arrays in its argument order."""
    missing = [c for c in dict.fromkeys(spec.inputs) if c not in kdata.columns]
    if missing:
        missing = [c for c in missing if c in PRICE_COLUMNS] + [c for c in missing if c not in PRICE_COLUMNS]
        raise IndicatorError(
            f"{spec.name} needs the bars' {', '.join(missing)} column(s); the frame has {list(kdata.columns)}"
        )
    return [np.ascontiguousarray(kdata[c].to_numpy(dtype=np.float64)) for c in spec.inputs]


def indicator(name: str, kdata: pd.DataFrame, **params: Any) -> pd.Series | pd.DataFrame:
    """``name`` (any case: "sma", "MACD", "macd_cn") over the bars ``kdata``; ``params`` are the
    function's own (``timeperiod=20``, ``fastperiod=12`` ...), TA-Lib's defaults otherwise.

    >>> hkrt.indicator("SMA", agent.kdata("SH600000", "MIN5"), timeperiod=20)
    """
    spec = resolve(name, params)
    if not isinstance(kdata, pd.DataFrame):
        raise IndicatorError(f"kdata must be a bars DataFrame (agent.kdata(...)), got {type(kdata).__name__}")
    outputs = compute(spec, bar_arrays(spec, kdata))
    if len(outputs) == 1:
        return pd.Series(outputs[0], index=kdata.index, name=spec.outputs[0])
    return pd.DataFrame(dict(zip(spec.outputs, outputs, strict=True)), index=kdata.index)
