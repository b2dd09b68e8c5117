"""The trader's memory of client order ids, kept on disk so a restarted trader never sends an order twice.

One JSON line per step: ``{"cid", "owner", "status": ""}`` when an order is received (written and flushed
before it is acknowledged or sent to the broker), then ``{"cid", "status", "order_id", "error"}`` with the
broker's answer.  A trader started again reads the file: an order it knows is answered from here when a
client sends it again (idempotent by client id); one received but never answered (the trader stopped while
the broker call was running) is ``unknown``: it may or may not have reached the venue, and the client is
told so.  Bounded: the newest :data:`MAX_ENTRIES` ids are kept, and the file is rewritten with them at each
start (so it never grows past about two lines per kept id plus one session's orders).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger("hkrt.trader")

MAX_ENTRIES = 100_000
UNKNOWN = "unknown"  # received by an earlier run of the trader, never answered
FORGOTTEN = "forgotten"  # known not to have reached the broker (a paper account kept on disk): a resend is new


@dataclass
class Entry:
    owner: str
    status: str = ""  # "" (received, the broker call not answered yet), an OrderStatus name, or UNKNOWN
    order_id: str = ""
    error: str = ""
    symbol: str = ""
    side: str = ""
    day: str = ""  # the order's market day (ISO): venues number orders per day


class TraderJournal:
    """Client id -> :class:`Entry`; ``path`` None keeps it in memory only (a test, or an operator's choice:
    then a restarted trader cannot tell an order it sent from a new one)."""

    def __init__(self, path: str | Path | None, *, max_entries: int = MAX_ENTRIES) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self.max_entries = max_entries
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.by_order_id: dict[str, str] = {}
        self.unknown = 0  # orders an earlier run received and never answered
        self._file: IO[str] | None = None
        self._lock = threading.Lock()  # the request loop receives, the worker answers
        if self.path is not None:
            self._load()
            self._rewrite()

    def _load(self) -> None:
        assert self.path is not None
        if not self.path.exists():
            return
        bad = 0
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                    cid = str(row["cid"])
                except (ValueError, KeyError, TypeError):
                    bad += 1  # a torn last line of a trader that died writing it
                    continue
                entry = self.entries.get(cid) or Entry(
                    str(row.get("owner", "")),
                    symbol=str(row.get("symbol", "")),
                    side=str(row.get("side", "")),
                    day=str(row.get("day", "")),
                )
                entry.status = str(row.get("status", ""))
                entry.order_id = str(row.get("order_id", "") or "")
                entry.error = str(row.get("error", ""))
                self._keep(cid, entry)
        for cid in [c for c, e in self.entries.items() if e.status == FORGOTTEN]:
            del self.entries[cid]
        self.by_order_id = {e.order_id: c for c, e in self.entries.items() if e.order_id}  # the last word of each
        for entry in self.entries.values():
            if entry.status == "":
                entry.status = UNKNOWN
                entry.error = "the trader stopped while sending it to the broker: it may or may not have reached it"
                self.unknown += 1
        if bad:
            log.warning("trader journal %s: %d unreadable lines skipped", self.path, bad,
                        extra={"path": str(self.path), "bad_lines": bad})  # fmt: skip

    def _rewrite(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for cid, e in self.entries.items():
                f.write(json.dumps({"cid": cid, **dataclasses.asdict(e)}) + "\n")
        if os.name == "posix":
            os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def _keep(self, cid: str, entry: Entry) -> None:
        self.entries[cid] = entry
        self.entries.move_to_end(cid)
        if entry.order_id:
            self.by_order_id[entry.order_id] = cid
        while len(self.entries) > self.max_entries:
            old_cid, old = self.entries.popitem(last=False)
            if old.order_id and self.by_order_id.get(old.order_id) == old_cid:
                del self.by_order_id[old.order_id]

    def _write(self, row: dict[str, str]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())  # before the broker is called: a crash then leaves "received" behind

    def get(self, cid: str) -> Entry | None:
        with self._lock:
            return self.entries.get(cid)

    def cid_of(self, order_id: str) -> str:
        """The client id of the broker's order ``order_id`` ("" when unknown)."""
        with self._lock:
            return self.by_order_id.get(order_id, "")

    def received(self, cid: str, owner: str, symbol: str = "", side: str = "", day: str = "") -> None:
        with self._lock:
            self._keep(cid, Entry(owner, symbol=symbol, side=side, day=day))
            self._write({"cid": cid, "owner": owner, "status": "", "symbol": symbol, "side": side, "day": day})

    def sent_on(self, day: str) -> list[tuple[str, Entry]]:
        """(client id, entry) of the orders of ``day`` (ISO) the broker took (``Sent`` with its order id)."""
        with self._lock:
            return [(c, e) for c, e in self.entries.items() if e.day == day and e.status == "Sent" and e.order_id]

    def answered(self, cid: str, status: str, order_id: str, error: str) -> None:
        with self._lock:
            entry = self.entries.get(cid) or Entry("")
            entry.status, entry.order_id, entry.error = status, order_id, error
            self._keep(cid, entry)
            self._write({"cid": cid, "status": status, "order_id": order_id, "error": error})

    def forget(self, cid: str) -> None:
        """Drop ``cid``: it is known never to have reached the broker (a paper account restored from disk does
        not hold it), so the client's resend is sent as a new order.  Written, so a later start forgets it too."""
        with self._lock:
            entry = self.entries.pop(cid, None)
            if entry is None:
                return
            if entry.order_id and self.by_order_id.get(entry.order_id) == cid:
                del self.by_order_id[entry.order_id]
            if entry.status == UNKNOWN:
                self.unknown -= 1
            self._write({"cid": cid, "status": FORGOTTEN, "order_id": "", "error": ""})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
