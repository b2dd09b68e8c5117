"""``indicator(name, kdata, **params)``: one indicator over a bars DataFrame, computed by TA-Lib.

The result is TA-Lib's own function applied to the frame's columns (``open``, ``high``, ``low``,
``close``, ``volume`` as :meth:`hkrt.SpotAgent.kdata` and :func:`hkrt.load_kdata` give them: prices in
yuan, volume in shares), indexed like the frame: a Series for a one-output function, a DataFrame with
TA-Lib's output names otherwise.  Values before an indicator's look-back are NaN, as TA-Lib gives them.

Variants that Chinese charting software prints and TA-Lib does not (docs/indicators.md):

* ``MACD_CN``: TA-Lib's MACD with the histogram doubled (``macdhist = 2 * (macd - macdsignal)``), the
  "MACD" bar column of Tongdaxin, Tonghuashun and most A-share terminals.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class IndicatorError(ValueError):
    """A bad indicator request: an unknown name, a parameter the function does not take or cannot
    use, or bars without a column it needs.  The message is one line naming the problem."""


def _talib_abstract() -> Any:
    try:
        from talib import abstract
    except ImportError as e:  # pragma: no cover - ta-lib is a dependency; a broken install says so
        raise IndicatorError(f"TA-Lib is not importable ({e}): pip install 'ta-lib>=0.8.1'") from None
    return abstract


def _macd_cn(kdata: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    out = _talib_call("MACD", kdata, params)
    assert isinstance(out, pd.DataFrame)
    out["macdhist"] = 2.0 * out["macdhist"]
    return out


# name -> (the TA-Lib function it builds on, how)
_VARIANTS: dict[str, tuple[str, Callable[[pd.DataFrame, Mapping[str, Any]], pd.Series | pd.DataFrame]]] = {
    "MACD_CN": ("MACD", _macd_cn),
}


def _talib_functions() -> list[str]:
    """TA-Lib's function names (its package carries no type information: read through Any)."""
    import talib

    names: Any = getattr(talib, "get_functions")()  # noqa: B009 - an untyped call, typed here
    return [str(n) for n in names]


def indicator_names() -> list[str]:
    """Every name :func:`indicator` takes: TA-Lib's functions, then hkrt's variants."""
    return sorted(_talib_functions()) + sorted(_VARIANTS)


def indicator(name: str, kdata: pd.DataFrame, **params: Any) -> pd.Series | pd.DataFrame:
    """``name`` (any case: "sma", "MACD", "macd_cn") over the bars ``kdata``; ``params`` are the
    function's own (``timeperiod=20``, ``fastperiod=12`` ...), TA-Lib's defaults otherwise.

    >>> hkrt.indicator("SMA", agent.kdata("SH600000", "MIN5"), timeperiod=20)
    """
    if not isinstance(name, str) or not name:
        raise IndicatorError(f"an indicator name is a string such as 'SMA', got {name!r}")
    if not isinstance(kdata, pd.DataFrame):
        raise IndicatorError(f"kdata must be a bars DataFrame (agent.kdata(...)), got {type(kdata).__name__}")
    key = name.upper()
    variant = _VARIANTS.get(key)
    if variant is not None:
        return variant[1](kdata, params)
    return _talib_call(key, kdata, params)


def _talib_call(key: str, kdata: pd.DataFrame, params: Mapping[str, Any]) -> pd.Series | pd.DataFrame:
    abstract = _talib_abstract()
    functions = _talib_functions()
    if key not in functions:
        known = functions + list(_VARIANTS)
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise IndicatorError(f"unknown indicator {key!r}{hint}: hkrt.indicators.indicator_names() lists them")
    function = abstract.Function(key)
    accepted = dict(function.info["parameters"])
    typed: dict[str, int | float] = {}
    for param, value in params.items():
        if param not in accepted:
            raise IndicatorError(f"{key} takes no parameter {param!r}; it takes {', '.join(accepted) or 'none'}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise IndicatorError(f"{key}'s {param} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise IndicatorError(f"{key}'s {param} must be finite, got {value!r}")
        # TA-Lib checks types strictly: a period is an int, a deviation a float (its default says which)
        if isinstance(accepted[param], int):
            if float(value) != int(value):
                raise IndicatorError(f"{key}'s {param} must be a whole number, got {value!r}")
            typed[param] = int(value)
        else:
            typed[param] = float(value)
    needed = _input_columns(function.info["input_names"])
    missing = [c for c in needed if c not in kdata.columns]
    if missing:
        raise IndicatorError(
            f"{key} needs the bars' {', '.join(missing)} column(s); the frame has {list(kdata.columns)}"
        )
    inputs = {c: np.ascontiguousarray(kdata[c].to_numpy(dtype=np.float64)) for c in needed}
    try:
        result = function(inputs, **typed)
    except Exception as e:  # TA-Lib's own check of a value (a period of 0 ...): one line, its words
        raise IndicatorError(f"{key}({', '.join(f'{k}={v!r}' for k, v in params.items())}): {e}") from None
    outputs = function.info["output_names"]
    if isinstance(result, np.ndarray):
        return pd.Series(result, index=kdata.index, name=outputs[0])
    return pd.DataFrame(dict(zip(outputs, result, strict=True)), index=kdata.index)


def _input_columns(input_names: Mapping[str, Any]) -> list[str]:
    """The bar columns a TA-Lib function reads, in its order ({'price': 'close'},
    {'prices': ['high', 'low', 'close']} ...)."""
    out: list[str] = []
    for value in input_names.values():
        for column in [value] if isinstance(value, str) else list(value):
            if column not in out:
                out.append(column)
    return [c for c in out if c in _PRICE_COLUMNS] + [c for c in out if c not in _PRICE_COLUMNS]
