"""The dashboard's messages as JSON text: NaN and infinities become null (JSON has no such numbers).

Shared by the web server (:mod:`hkrt.dashboard.app`) and the relay of a strategy's stream to a node's
dashboard (:mod:`hkrt.dashboard.relay`), which must not load the web stack.
"""

from __future__ import annotations

import json
import math
from typing import Any


def clean(value: Any) -> Any:
    """NaN and infinities as None, in nested dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def dumps(message: Any) -> str:
    try:
        return json.dumps(message, allow_nan=False, default=str)
    except ValueError:
        return json.dumps(clean(message), allow_nan=False, default=str)
