"""A :class:`~hkrt.adapters.paper.execution.PaperBroker`'s account on disk (here, beside its trader: the paper venue
keeps the files every venue has), so a paper broker hosted by a trader
process that is restarted (killed mid-day, hung and killed) keeps the money and shares of its strategy.

A paper account lives in the process that simulates it: a real broker's account outlives the trader that
talks to it, a paper one would die with it (the strategy's book then holds shares its account never had).
The trader rewrites this file after each piece of broker work that changed the account (``hkrt trader
--account-file``) and a new trader reads it back before it serves: cash, reserved cash, holdings (T+1:
shares bought today stay unsellable), open orders (they keep matching), the newest 1,000 orders it
finished (for cancel answers), its order and trade counters (ids never repeat) and the market days it saw.

What is not kept: the latest quotes (the next spots bring them).  Its keeper (hkrt.trader.paper_account)
keeps the reports no strategy has fetched yet in the same file.
Written atomically (a temporary file renamed into place, owner-only); a file that cannot be read is one
ValueError line (the trader refuses to start on an account it cannot trust).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from hkrt.adapters.paper.execution import PaperBroker, _Holding, _Order

VERSION = 1
#: finished orders kept in the file (the newest; for cancel answers only: an older one's cancel is answered
#: "unknown order" instead of "filled" after a restart): the file is rewritten after each change, so it stays small
KEEP_FINISHED = 1000


def account_version(broker: PaperBroker) -> tuple[Any, ...]:
    """A value that changes whenever the account may have: orders taken or refused, fills, ends, day closes."""
    with broker._lock:
        return (broker._orders, broker._trades, len(broker._finished), broker._closed_day, broker._market_day,
                tuple(broker._stats.values()))  # fmt: skip


def account_state(broker: PaperBroker) -> dict[str, Any]:
    """The account as JSON-ready data."""
    with broker._lock:
        return {
            "version": VERSION,
            "name": broker.name,
            "cash": broker._cash,
            "reserved_cash": broker._reserved_cash,
            "holdings": {s: dataclasses.asdict(h) for s, h in broker._holdings.items()},
            "open": [_order_data(o) for o in broker._open.values()],
            "finished": list(broker._finished.items())[-KEEP_FINISHED:],
            "orders": broker._orders,
            "trades": broker._trades,
            "market_day": _iso(broker._market_day),
            "closed_day": _iso(broker._closed_day),
            "last_time": _iso(broker._last_time),
            "stats": dict(broker._stats),
        }


def save_account(broker: PaperBroker, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> None:
    """Write the account (and ``extra``, what its keeper keeps with it) to ``path`` (atomically, owner-only)."""
    from hkrt.strategy.control import write_json_atomic

    where = Path(path).expanduser()
    where.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(where, {**(extra or {}), **account_state(broker)})


def load_account(broker: PaperBroker, path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Give ``broker`` the account in ``path`` and return the file's data; None when there is no file (a first
    start).  ValueError (one line naming the file) for a file that is not a paper account of this version."""
    where = Path(path).expanduser()
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ValueError(f"paper account {where}: cannot be read ({err})") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"paper account {where}: not a paper account file of version {VERSION}")
    try:
        restore_account(broker, data)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"paper account {where}: bad content ({type(err).__name__}: {err})") from None
    return data


def restore_account(broker: PaperBroker, data: dict[str, Any]) -> None:
    """Put the account of ``data`` (:func:`account_state`) into ``broker``."""
    holdings = {str(s): _Holding(**h) for s, h in data["holdings"].items()}
    orders = [_order_from(o) for o in data["open"]]
    with broker._lock:
        broker._cash = float(data["cash"])
        broker._reserved_cash = float(data["reserved_cash"])
        broker._holdings = holdings
        broker._open = {o.order_id: o for o in orders}
        broker._open_by_symbol = {}
        for o in orders:
            broker._open_by_symbol.setdefault(o.symbol, {})[o.order_id] = o
        broker._finished = OrderedDict((str(k), str(v)) for k, v in data["finished"])
        broker._orders = int(data["orders"])
        broker._trades = int(data["trades"])
        broker._market_day = _date(data["market_day"])
        broker._closed_day = _date(data["closed_day"])
        broker._last_time = _datetime(data["last_time"])
        broker._stats.update({k: int(v) for k, v in data.get("stats", {}).items() if k in broker._stats})


def _order_data(order: _Order) -> dict[str, Any]:
    out = dataclasses.asdict(order)
    out["day"], out["created"] = order.day.isoformat(), order.created.isoformat()
    return out


def _order_from(data: dict[str, Any]) -> _Order:
    fields = dict(data)
    fields["day"] = dt.date.fromisoformat(fields["day"])
    fields["created"] = dt.datetime.fromisoformat(fields["created"])
    return _Order(**fields)


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) and value else None


def _datetime(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None
