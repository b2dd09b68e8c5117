"""Column conversions shared by the agent and the wire encoder: numpy in, the core's types out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hkrt.core.china_time import CHINA_TZ


def floats(values: Any) -> np.ndarray:
    """A contiguous float64 array."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64))


def datetime_ms(values: Any) -> np.ndarray:
    """Datetimes as int64 milliseconds of China local time (tz-aware values converted;
    naive values, and naive entries among aware ones, are China local time already)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        naive = values
    else:
        try:
            index = pd.DatetimeIndex(values)
        except (TypeError, ValueError):  # naive and aware mixed
            index = pd.DatetimeIndex([_naive_china(pd.Timestamp(v)) for v in values])
        if index.tz is not None:
            index = index.tz_convert(CHINA_TZ).tz_localize(None)
        naive = index.to_numpy()
    if naive.dtype.kind != "M":
        raise TypeError(f"datetime must hold datetimes, got dtype {naive.dtype}")
    return np.ascontiguousarray(naive.astype("datetime64[ms]").astype(np.int64))


def _naive_china(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert(CHINA_TZ).tz_localize(None) if ts.tzinfo is not None else ts
