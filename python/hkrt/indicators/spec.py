"""What one indicator request is, checked: ``IndicatorSpec`` (name, the bar columns it reads, its
outputs, its parameters typed), and ``IndicatorError``, the one-line error of a bad request.

Batch (:mod:`hkrt.indicators.batch`) and live (:mod:`hkrt.indicators.live`) indicators check a
request here, so a name or parameter is accepted or refused the same way by both.  TA-Lib's own
description of a function (``talib.abstract``) says what it reads, returns and takes; hkrt's
variants (:mod:`hkrt.indicators.variants`) say the same of themselves.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")

Param = int | float


class IndicatorError(ValueError):
    """A bad indicator request: an unknown name, a parameter the function does not take or cannot
    use, or bars without a column it needs.  The message is one line naming the problem."""


@dataclass(frozen=True)
class IndicatorSpec:
    """One checked request.  ``inputs``: the bar columns the function reads, in the order its
    arguments take them; ``outputs``: its output names (a Series is named by the one, a
    DataFrame's columns by several); ``given``: the parameters the caller gave, typed as the
    function wants them; ``params``: every parameter, the defaults filled in (two requests with
    equal ``params`` are the same indicator)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    given: tuple[tuple[str, Param], ...]
    params: tuple[tuple[str, Param], ...]

    def describe(self) -> str:
        """``SMA(timeperiod=20)``: the request as a user would write it (for messages)."""
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.given)})"


def talib_module() -> Any:
    """TA-Lib, loaded on first use (its package carries no type information: read through Any)."""
    try:
        import talib
    except ImportError as e:  # pragma: no cover - ta-lib is a dependency; a broken install says so
        raise IndicatorError(f"TA-Lib is not importable ({e}): pip install 'ta-lib>=0.8.1'") from None
    return talib


@functools.lru_cache(maxsize=1)
def talib_functions() -> tuple[str, ...]:
    """TA-Lib's function names."""
    names: Any = getattr(talib_module(), "get_functions")()  # noqa: B009 - an untyped call, typed here
    return tuple(str(n) for n in names)


@functools.cache
def talib_signature(key: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, Param], ...]]:
    """(inputs, outputs, parameter defaults) of TA-Lib's function ``key``, from its own description."""
    abstract: Any = importlib.import_module("talib.abstract")
    info = abstract.Function(key).info
    inputs: list[str] = []
    for value in info["input_names"].values():  # {'price': 'close'}, {'prices': ['high', 'low', 'close']} ...
        inputs.extend([value] if isinstance(value, str) else list(value))
    defaults = tuple((str(k), v) for k, v in info["parameters"].items())
    return tuple(inputs), tuple(str(o) for o in info["output_names"]), defaults


@functools.lru_cache(maxsize=4096)
def talib_lookback(key: str, given: tuple[tuple[str, Param], ...]) -> int:
    """How many bars TA-Lib's ``key`` with these parameters reads before its first value."""
    abstract: Any = importlib.import_module("talib.abstract")
    return int(abstract.Function(key, **dict(given)).lookback)


def typed_params(
    key: str, defaults: tuple[tuple[str, Param], ...], params: Mapping[str, Any]
) -> tuple[tuple[tuple[str, Param], ...], tuple[tuple[str, Param], ...]]:
    """``params`` checked against a function's parameters and typed as its defaults say (a
    period is an int, a deviation a float: TA-Lib checks types strictly).  Returns (the given
    ones, typed; all of them, defaults filled)."""
    accepted = dict(defaults)
    typed: dict[str, Param] = {}
    for param, value in params.items():
        if param not in accepted:
            raise IndicatorError(f"{key} takes no parameter {param!r}; it takes {', '.join(accepted) or 'none'}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise IndicatorError(f"{key}'s {param} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise IndicatorError(f"{key}'s {param} must be finite, got {value!r}")
        if isinstance(accepted[param], int):
            if float(value) != int(value):
                raise IndicatorError(f"{key}'s {param} must be a whole number, got {value!r}")
            typed[param] = int(value)
        else:
            typed[param] = float(value)
    full = tuple((k, typed.get(k, v)) for k, v in defaults)
    return tuple(typed.items()), full
