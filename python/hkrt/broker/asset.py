"""The asset snapshot a broker reports: hikyuu's JSON contract, parsed into dataclasses.

JSON (what ``OrderBrokerBase.get_asset_info()`` returns)::

    {"datetime": "2026-11-20 14:50:00", "cash": 100000.0,
     "positions": [{"market": "SH", "code": "600000", "number": 1000.0,
                    "stoploss": 0.0, "goal_price": 0.0, "cost_price": 10.0}]}

``number`` is shares held + being bought − being sold; ``cost_price`` is yuan per share.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

_POSITION_KEYS = ("market", "code", "number", "stoploss", "goal_price", "cost_price")


@dataclasses.dataclass
class BrokerPosition:
    """One holding as the broker reports it."""

    market: str
    code: str
    number: float
    stoploss: float = 0.0
    goal_price: float = 0.0
    cost_price: float = 0.0


@dataclasses.dataclass
class AssetInfo:
    """Cash and positions at ``datetime`` (naive China local time; None when the broker gave none)."""

    cash: float
    positions: list[BrokerPosition] = dataclasses.field(default_factory=list)
    datetime: dt.datetime | None = None

    @classmethod
    def parse(cls, data: str | bytes | dict[str, Any]) -> AssetInfo:
        """Parse the JSON (or its dict).  ValueError naming the problem for anything malformed,
        including an empty string: a failed query is never read as "no cash, no positions"."""
        if isinstance(data, (str, bytes)):
            if not data.strip():
                raise ValueError("empty asset info (the broker's get_asset_info failed?)")
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise ValueError(f"asset info is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"asset info must be a JSON object, not {type(data).__name__}")
        for key in ("cash", "positions"):
            if key not in data:
                raise ValueError(f"asset info lacks {key!r}")
        if not isinstance(data["positions"], list):
            raise ValueError("asset info 'positions' must be a list")
        when = data.get("datetime")
        try:
            parsed_when = dt.datetime.fromisoformat(str(when)) if when not in (None, "") else None
            cash = float(data["cash"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"asset info: {e}") from None
        positions = []
        for i, p in enumerate(data["positions"]):
            if not isinstance(p, dict):
                raise ValueError(f"position {i} must be an object")
            missing = [k for k in _POSITION_KEYS if k not in p]
            if missing:
                raise ValueError(f"position {i} lacks {', '.join(missing)}")
            try:
                positions.append(
                    BrokerPosition(
                        market=str(p["market"]).upper(),
                        code=str(p["code"]),
                        number=float(p["number"]),
                        stoploss=float(p["stoploss"]),
                        goal_price=float(p["goal_price"]),
                        cost_price=float(p["cost_price"]),
                    )
                )
            except (TypeError, ValueError) as e:
                raise ValueError(f"position {i}: {e}") from None
        return cls(cash=cash, positions=positions, datetime=parsed_when)

    def to_dict(self) -> dict[str, Any]:
        when = self.datetime or _now_china()
        return {
            "datetime": when.isoformat(sep=" "),
            "cash": self.cash,
            "positions": [dataclasses.asdict(p) for p in self.positions],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def _now_china() -> dt.datetime:
    from hkrt.core.china_time import china_now

    return china_now().replace(microsecond=0)
