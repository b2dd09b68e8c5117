"""The messages between a :class:`~hkrt.trader.remote_broker.RemoteBroker` and ``hkrt trader``.

One nng request/reply pair per exchange (docs/trader-process.md).  A request is a JSON object::

    {"v": 1, "session": "<client's random id>", "after": <last event seq seen | null>, "items": [...]}

whose items are numbered per session (``id``, increasing: the trader acts on an item once, however often it
is re-sent) and are ``submit``, ``cancel``, ``asset``, ``spots`` / ``day_closed`` (market data for a paper
broker) or nothing (a plain poll).  The reply::

    {"v": 1, "epoch": "<trader run id>", "broker": "<name>", "taken": <highest item id acted on>,
     "events": [{"seq": n, "type": "report" | "result" | "cancel" | "asset", ...}], "last": n, "first": n,
     "queued": <items waiting for the broker>, "busy": <seconds the current broker call has run>}

says which items were taken and carries every event after ``after`` (null on a client's first contact: from then
on) that belongs to the session (or to nobody: a report of an order the trader never sent), at most
:data:`MAX_EVENTS_PER_REPLY`. Sequence numbers let the client see a gap and ask again (it always asks from its
last seen seq, so a lost reply costs nothing; ``first`` above its last seen + 1 means events passed out of the
trader's ring); ``epoch`` changes when the trader restarts. With a key every message is sealed
(:func:`hkrt.feed.feed_auth.seal`, HMAC-SHA256): the trader drops an unsealed or wrongly sealed request unread
and answers only :data:`AUTH_REFUSED`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from hkrt._hkrt import OrderRequest
from hkrt.bus.trading import ExecutionReport
from hkrt.feed.feed_auth import is_loopback, seal, unseal

VERSION = 1
MAX_EVENTS_PER_REPLY = 500
MAX_ITEMS_PER_REQUEST = 200
AUTH_REFUSED = b'{"v": 1, "error": "authentication refused"}'
ENV_KEY = "HKRT_TRADER_KEY"
ENV_KEY_FILE = "HKRT_TRADER_KEY_FILE"


class ProtocolError(ValueError):
    """A message that is not this protocol's (one line)."""


def encode(message: dict[str, Any], key: bytes | None) -> bytes:
    body = json.dumps(message, separators=(",", ":"), default=_json_default).encode("utf-8")
    return seal(key, body) if key is not None else body


def decode(data: bytes, key: bytes | None) -> dict[str, Any]:
    """The message in ``data``; ProtocolError when it is not sealed with ``key`` (when one is set) or not ours."""
    if key is not None:
        body = unseal(key, data)
        if body is None:
            raise ProtocolError("authentication refused: the message is not sealed with this key")
    else:
        body = data
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProtocolError(f"not a trader message: {err}") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise ProtocolError("not a trader message of version 1")
    return message


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _datetime(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


# ------------------------------------------------------------------ reports and requests
def report_to_dict(report: ExecutionReport) -> dict[str, Any]:
    out = asdict(report)
    out["datetime"] = report.datetime.isoformat() if report.datetime is not None else None
    return out


def report_from_dict(data: dict[str, Any], broker: str) -> ExecutionReport:
    """The report, as broker ``broker`` (the RemoteBroker's name: the strategy's order manager knows its
    orders by it)."""
    fields = {k: v for k, v in data.items() if k in ExecutionReport.__dataclass_fields__}
    fields["broker"] = broker
    fields["datetime"] = _datetime(fields.get("datetime"))
    return ExecutionReport(**fields)


def request_to_dict(request: OrderRequest) -> dict[str, Any]:
    return {
        "datetime": request.datetime, "market": request.market, "code": request.code, "price": request.price,
        "num": request.num, "stoploss": request.stoploss, "goal_price": request.goal_price,
        "part_from": request.part_from, "remark": request.remark, "client_order_id": request.client_order_id,
        "order_type": request.order_type, "time_in_force": request.time_in_force,
    }  # fmt: skip


def request_from_dict(data: dict[str, Any]) -> OrderRequest:
    return OrderRequest(
        _datetime(data["datetime"]), data["market"], data["code"], float(data["price"]), float(data["num"]),
        float(data.get("stoploss", 0.0)), float(data.get("goal_price", 0.0)), int(data.get("part_from", 0)),
        str(data.get("remark", "")), client_order_id=str(data.get("client_order_id", "")),
        order_type=str(data.get("order_type", "limit")), time_in_force=str(data.get("time_in_force", "day")),
    )  # fmt: skip


# ------------------------------------------------------------------ addresses
def default_address(broker: str) -> str:
    """``ipc://<runtime dir>/trader-<broker>.ipc``: a socket in the user's owner-only runtime directory (on
    Windows a per-user pipe name)."""
    import os

    from hkrt.feed.transport import _login_name, runtime_dir, windows_pipe_name

    if os.name == "nt":
        return f"ipc://{windows_pipe_name(_login_name())}-trader-{broker}"
    return f"ipc://{runtime_dir() / f'trader-{broker}.ipc'}"


def check_address(address: str, key: bytes | None) -> None:
    """ValueError (one line) for an address the trader must not use: TCP needs a key, even on loopback
    (any local user can reach a loopback port, and orders are money), and never beyond loopback without one."""
    if address.startswith(("ipc://", "inproc://")):
        return
    if not address.startswith("tcp://"):
        raise ValueError(f"trader address {address!r}: expected ipc://PATH or tcp://127.0.0.1:PORT")
    if key is None:
        where = "127.0.0.1" if is_loopback(address) else "a network address"
        raise ValueError(
            f"trader on {address} needs a key: TCP on {where} is reachable by other users "
            f"(set {ENV_KEY} to a hex key or {ENV_KEY_FILE} to an owner-only key file), or use ipc://"
        )


def load_key(key: bytes | str | None = None, *, key_file: str | None = None) -> bytes | None:
    """The trader key: ``key``, ``key_file``, ``$HKRT_TRADER_KEY`` (hex) or ``$HKRT_TRADER_KEY_FILE`` (the feed's
    key rules: hex, at least 16 bytes, a key file readable by its owner only)."""
    from hkrt.feed import feed_auth

    return feed_auth.load_key(key, key_file=key_file, key_env=ENV_KEY, file_env=ENV_KEY_FILE)
