"""Retransmission of sent spot messages: what a publisher keeps, the server, the client.

A publisher keeps every numbered message it sent in a :class:`SentLog`: the exact bytes in a
memory ring bounded by message count and bytes, plus, when it records a journal, an index
sequence -> journal position so that messages the ring evicted can still be served from the
journal.  A :class:`RetransmitServer` (nng Rep0, on :func:`retransmit_address` of each feed
address) answers requests for a sequence range of one publisher session; :func:`fetch_missing`
asks for a range and assembles the partial replies.

The protocol (version 1, little-endian; docs/feed-recovery.md has the tables)::

    request  = "HKRQ" u8 version u8 flags u16 0 | u64 request_id | u64 publisher_id
               | u64 session_epoch | u64 first | u64 last | u32 max_bytes           (52 bytes)
    reply    = "HKRP" u8 version u8 status u16 0 | u64 request_id | u64 publisher_id
               | u64 session_epoch | u64 first | u64 through | u32 n_messages
               | u32 n_unavailable | u32 error_len                                    (60 bytes)
               then n_unavailable x (u64 first, u64 last), error_len bytes of UTF-8,
               then n_messages x (u64 sequence, u32 length, the message)

A reply covers ``first .. through``: every sequence in it is either one of its messages or in
one of its unavailable ranges.  ``through < last`` (status PARTIAL) means the reply was cut by
its byte cap or range cap and the client asks again from ``through + 1``.  With a feed key,
requests and replies are sealed (hkrt.feed.feed_auth) as a whole; the messages inside are the wire
messages as encoded (the bytes the agent ingests), authenticated by the reply's seal.
"""

from __future__ import annotations

import bisect
import enum
import logging
import secrets
import struct
import threading
import time
import zlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hkrt.feed.feed_auth import OVERHEAD as SEAL_OVERHEAD
from hkrt.feed.feed_auth import is_sealed, seal, unseal

# pynng is imported where a socket is opened: hkrt.feed.transport imports this module for an agent fed
# in-process, which must not load a socket library.

log = logging.getLogger("hkrt.retransmit")

PROTOCOL_VERSION = 1
REQUEST_MAGIC = b"HKRQ"
REPLY_MAGIC = b"HKRP"
_REQUEST = struct.Struct("<4sBBHQQQQQI")
_REPLY = struct.Struct("<4sBBHQQQQQIII")
_RANGE = struct.Struct("<QQ")
_ITEM = struct.Struct("<QI")
REQUEST_BYTES = _REQUEST.size
REPLY_HEADER_BYTES = _REPLY.size

DEFAULT_RING_MESSAGES = 100_000
DEFAULT_RING_BYTES = 512 * 1024 * 1024
DEFAULT_INDEX_ENTRIES = 10_000_000  # 28 bytes each: at most ~280 MB for a very long session
DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024  # server side cap of one reply's messages
DEFAULT_CLIENT_REPLY_BYTES = 8 * 1024 * 1024  # what a client asks for per reply
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024  # what one fetch_missing call collects at most
MAX_REQUEST_RANGE = 1_000_000  # sequences one request may cover; a longer range is served in parts
MAX_RANGES_PER_REPLY = 1024  # unavailable ranges one reply lists (keeps the reply bounded)
MAX_ERROR_BYTES = 512
_REPLY_SLACK = REPLY_HEADER_BYTES + MAX_RANGES_PER_REPLY * _RANGE.size + MAX_ERROR_BYTES + SEAL_OVERHEAD + 1024
_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1


class Status(enum.IntEnum):
    """A reply's status."""

    OK = 0  # covers the whole requested range
    PARTIAL = 1  # covers first..through; ask again from through + 1
    WRONG_SESSION = 2  # not this server's publisher session: the whole range is unavailable here
    BAD_REQUEST = 3  # malformed or inconsistent request
    UNAUTHENTICATED = 4  # the request is not sealed with this server's key
    TOO_LARGE = 5  # the message at ``first`` alone exceeds the reply cap
    UNSUPPORTED_VERSION = 6
    INTERNAL = 7  # the server failed; it keeps serving


def retransmit_address(feed_address: str) -> str:
    """The retransmission address that goes with a feed address, on the same host.

    ``ipc:///run/hkrt/spot.ipc`` -> ``ipc:///run/hkrt/spot-retransmit.ipc`` (also inproc://),
    ``tcp://host:9200`` -> ``tcp://host:9201``.  ValueError when none can be derived.
    """
    scheme, sep, rest = feed_address.partition("://")
    if not sep:
        raise ValueError(f"invalid feed address {feed_address!r}: expected scheme://...")
    if scheme.startswith("tcp") or scheme.startswith("tls+tcp") or scheme in ("ws", "wss"):
        host, colon, port_path = rest.rpartition(":")
        port_text, slash, path = port_path.partition("/")
        if not colon or not port_text.isdigit():
            raise ValueError(f"cannot derive a retransmission address from {feed_address!r}: no port")
        port = int(port_text)
        if not 0 < port < 65535:
            raise ValueError(f"cannot derive a retransmission address from {feed_address!r}: needs a port in 1..65534")
        return f"{scheme}://{host}:{port + 1}{slash}{path}"
    head, slash, name = rest.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    name = f"{stem}-retransmit.{suffix}" if dot and stem else f"{name}-retransmit"
    return f"{scheme}://{head}{slash}{name}"


# ------------------------------------------------------------------------------ the sent log
@dataclass(frozen=True)
class _JournalPlace:
    start: int  # where the record begins in the journal file
    end: int  # where it ends: the payload is its last ``length`` bytes
    length: int
    crc: int  # crc32 of the payload, checked when it is read back


@dataclass
class Collected:
    """What :meth:`SentLog.collect` found for a range."""

    messages: list[tuple[int, bytes]] = field(default_factory=list)
    unavailable: list[tuple[int, int]] = field(default_factory=list)
    through: int = 0  # the last sequence covered (messages or unavailable)
    too_large: int | None = None  # the sequence whose message alone exceeds the cap
    from_ring: int = 0
    from_journal: int = 0


class SentLog:
    """Sent messages by sequence: a memory ring, plus an index into the publisher's journal.

    The ring keeps the newest messages, at most ``max_messages`` and ``max_bytes`` (the oldest
    are evicted first; a single message larger than ``max_bytes`` is not kept in memory).
    The journal index (``journal_path`` given) keeps sequence -> position for every message
    journaled in this session, at most ``max_index_entries`` (beyond that the oldest half is
    dropped: those messages become unavailable).  Sequences must increase; a message whose
    sequence does not is not kept (counted as ``not_kept``).  Thread-safe.
    """

    def __init__(
        self,
        *,
        max_messages: int = DEFAULT_RING_MESSAGES,
        max_bytes: int = DEFAULT_RING_BYTES,
        journal_path: str | Path | None = None,
        max_index_entries: int = DEFAULT_INDEX_ENTRIES,
    ) -> None:
        if max_messages < 0 or max_bytes < 0 or max_index_entries < 1:
            raise ValueError("ring_messages and ring_bytes must be >= 0, max_index_entries >= 1")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_index_entries = max_index_entries
        self.journal_path = Path(journal_path) if journal_path is not None else None
        self._lock = threading.Lock()
        self._ring: OrderedDict[int, bytes] = OrderedDict()
        self._ring_bytes = 0
        self._index_seq = array("Q")
        self._index_start = array("Q")
        self._index_end = array("Q")
        self._index_len = array("I")
        self._index_crc = array("I")
        self.last_sequence = 0
        self.stats: dict[str, int] = {"evicted": 0, "not_kept": 0, "index_dropped": 0, "journal_read_errors": 0}

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def ring_bytes(self) -> int:
        return self._ring_bytes

    @property
    def first_in_ring(self) -> int | None:
        with self._lock:
            return next(iter(self._ring), None)

    @property
    def indexed(self) -> int:
        return len(self._index_seq)

    def snapshot(self) -> dict[str, Any]:
        """Messages and bytes held, the first sequence held, journal entries indexed, counters."""
        with self._lock:
            return {
                "messages": len(self._ring),
                "bytes": self._ring_bytes,
                "first_sequence": next(iter(self._ring), None),
                "journal_indexed": len(self._index_seq),
                **self.stats,
            }

    def add(self, sequence: int, message: bytes, journal_span: tuple[int, int] | None = None) -> None:
        """Keep ``message`` (sent with ``sequence``); ``journal_span`` is the (start, end) of
        the journal record that holds it, when it was journaled."""
        with self._lock:
            if sequence <= self.last_sequence:
                self.stats["not_kept"] += 1
                return
            self.last_sequence = sequence
            if journal_span is not None:
                self._index(sequence, journal_span, message)
            self._ring[sequence] = message
            self._ring_bytes += len(message)
            while self._ring and (len(self._ring) > self.max_messages or self._ring_bytes > self.max_bytes):
                _, old = self._ring.popitem(last=False)
                self._ring_bytes -= len(old)
                self.stats["evicted"] += 1

    def _index(self, sequence: int, span: tuple[int, int], message: bytes) -> None:
        if len(self._index_seq) >= self.max_index_entries:
            drop = max(1, len(self._index_seq) // 2)
            for column in (self._index_seq, self._index_start, self._index_end, self._index_len, self._index_crc):
                del column[:drop]
            self.stats["index_dropped"] += drop
            log.warning(
                "retransmission journal index full: oldest entries dropped",
                extra={"dropped": drop, "max_index_entries": self.max_index_entries},
            )
        self._index_seq.append(sequence)
        self._index_start.append(span[0])
        self._index_end.append(span[1])
        self._index_len.append(len(message))
        self._index_crc.append(zlib.crc32(message))

    def _journal_place(self, sequence: int) -> _JournalPlace | None:
        i = bisect.bisect_left(self._index_seq, sequence)
        if i < len(self._index_seq) and self._index_seq[i] == sequence:
            return _JournalPlace(self._index_start[i], self._index_end[i], self._index_len[i], self._index_crc[i])
        return None

    def _next_available(self, sequence: int, last: int) -> int:
        """The smallest available sequence above ``sequence`` (known unavailable), or last + 1."""
        bound = min(last, self.last_sequence) + 1
        candidates = [bound]
        i = bisect.bisect_right(self._index_seq, sequence)
        if i < len(self._index_seq):
            candidates.append(self._index_seq[i])
        first_ring = next(iter(self._ring), None)
        if first_ring is not None:
            if first_ring > sequence:
                candidates.append(first_ring)
            else:  # a hole inside the ring (a sequence the publisher skipped): step over it
                probe = sequence + 1
                while probe < min(candidates) and probe not in self._ring:
                    probe += 1
                candidates.append(probe)
        return min(candidates)

    def collect(self, first: int, last: int, max_bytes: int, max_ranges: int = MAX_RANGES_PER_REPLY) -> Collected:
        """The messages ``first .. last`` in order, at most ``max_bytes`` of them (each counted
        with its 12-byte item header), and the sub-ranges that are not available.  Stops early
        (``through < last``) at the byte cap or after ``max_ranges`` unavailable ranges."""
        out = Collected(through=first - 1)
        planned: list[tuple[int, bytes | _JournalPlace]] = []
        size = 0
        with self._lock:
            seq = first
            while seq <= last:
                if seq > self.last_sequence:
                    if len(out.unavailable) >= max_ranges:
                        break
                    out.unavailable.append((seq, last))  # never sent in this session
                    out.through = last
                    break
                item: bytes | _JournalPlace | None = self._ring.get(seq)
                if item is None:
                    item = self._journal_place(seq)
                if item is None:
                    if len(out.unavailable) >= max_ranges:
                        break
                    following = self._next_available(seq, last)
                    out.unavailable.append((seq, following - 1))
                    out.through = following - 1
                    seq = following
                    continue
                length = len(item) if isinstance(item, bytes) else item.length
                if size + length + _ITEM.size > max_bytes:
                    if not planned and not out.unavailable:
                        out.too_large = seq
                    break
                planned.append((seq, item))
                size += length + _ITEM.size
                out.through = seq
                seq += 1
        journal_items = [(seq, item) for seq, item in planned if isinstance(item, _JournalPlace)]
        read = self._read_journal(journal_items) if journal_items else {}
        lost: list[int] = []
        for seq, item in planned:
            message = item if isinstance(item, bytes) else read.get(seq)
            if message is None:
                lost.append(seq)
                continue
            out.messages.append((seq, message))
            if isinstance(item, bytes):
                out.from_ring += 1
            else:
                out.from_journal += 1
        if lost:
            out.unavailable = _merge_ranges(out.unavailable + [(s, s) for s in lost])
        return out

    def _read_journal(self, items: list[tuple[int, _JournalPlace]]) -> dict[int, bytes]:
        """Payloads read back from the journal; a record that cannot be read or whose CRC does
        not match is left out (and reported), never served."""
        found: dict[int, bytes] = {}
        assert self.journal_path is not None
        try:
            with open(self.journal_path, "rb") as file:
                for seq, place in items:
                    file.seek(place.end - place.length)
                    payload = file.read(place.length)
                    if len(payload) == place.length and zlib.crc32(payload) == place.crc:
                        found[seq] = payload
        except OSError as err:
            log.warning(
                "cannot read the journal for a retransmission",
                extra={"path": str(self.journal_path), "error": str(err)},
            )
        bad = len(items) - len(found)
        if bad:
            with self._lock:
                self.stats["journal_read_errors"] += bad
            log.warning(
                "journal records unreadable for retransmission",
                extra={"path": str(self.journal_path), "records": bad},
            )
        return found


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


# ------------------------------------------------------------------------------ wire of the protocol
@dataclass(frozen=True)
class Request:
    request_id: int
    publisher_id: int
    session_epoch: int
    first: int
    last: int
    max_bytes: int
    version: int = PROTOCOL_VERSION


@dataclass
class Reply:
    status: Status
    request_id: int = 0
    publisher_id: int = 0
    session_epoch: int = 0
    first: int = 0
    through: int = 0
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    unavailable: list[tuple[int, int]] = field(default_factory=list)
    error: str = ""


def encode_request(request: Request) -> bytes:
    return _REQUEST.pack(
        REQUEST_MAGIC,
        request.version,
        0,
        0,
        request.request_id,
        request.publisher_id,
        request.session_epoch,
        request.first,
        request.last,
        request.max_bytes,
    )


def decode_request(data: bytes) -> Request:
    """A request; ValueError (short reason) when it is not one."""
    if len(data) < 5 or data[:4] != REQUEST_MAGIC:
        raise ValueError("not a retransmission request")
    if data[4] != PROTOCOL_VERSION:
        raise _VersionError(f"protocol version {data[4]} not supported (this server speaks {PROTOCOL_VERSION})")
    if len(data) != _REQUEST.size:
        raise ValueError(f"request is {len(data)} bytes, expected {_REQUEST.size}")
    _, version, _, _, request_id, publisher_id, epoch, first, last, max_bytes = _REQUEST.unpack(data)
    if first < 1 or last < first:
        raise ValueError(f"invalid range {first}..{last}: need 1 <= first <= last")
    return Request(request_id, publisher_id, epoch, first, last, max_bytes, version)


class _VersionError(ValueError):
    pass


def encode_reply(reply: Reply) -> bytes:
    error = reply.error.encode("utf-8")[:MAX_ERROR_BYTES]
    parts = [
        _REPLY.pack(
            REPLY_MAGIC,
            PROTOCOL_VERSION,
            int(reply.status),
            0,
            reply.request_id,
            reply.publisher_id,
            reply.session_epoch,
            reply.first,
            reply.through,
            len(reply.messages),
            len(reply.unavailable),
            len(error),
        )
    ]
    parts.extend(_RANGE.pack(a, b) for a, b in reply.unavailable)
    parts.append(error)
    for seq, message in reply.messages:
        parts.append(_ITEM.pack(seq, len(message)))
        parts.append(message)
    return b"".join(parts)


def decode_reply(data: bytes) -> Reply:
    """A reply; ValueError when it is malformed."""
    if len(data) < _REPLY.size or data[:4] != REPLY_MAGIC:
        raise ValueError("not a retransmission reply")
    fields = _REPLY.unpack_from(data, 0)
    _, version, status, _, request_id, publisher_id, epoch, first, through, n_messages, n_ranges, error_len = fields
    if version != PROTOCOL_VERSION:
        raise ValueError(f"reply protocol version {version} not supported")
    try:
        status = Status(status)
    except ValueError:
        raise ValueError(f"unknown reply status {status}") from None
    pos = _REPLY.size
    if n_ranges > MAX_RANGES_PER_REPLY or pos + n_ranges * _RANGE.size + error_len > len(data):
        raise ValueError("reply truncated")
    unavailable = [_RANGE.unpack_from(data, pos + i * _RANGE.size) for i in range(n_ranges)]
    pos += n_ranges * _RANGE.size
    error = data[pos : pos + error_len].decode("utf-8", "replace")
    pos += error_len
    view = memoryview(data)
    messages: list[tuple[int, bytes]] = []
    for _ in range(n_messages):
        if pos + _ITEM.size > len(data):
            raise ValueError("reply truncated")
        seq, length = _ITEM.unpack_from(data, pos)
        pos += _ITEM.size
        if pos + length > len(data):
            raise ValueError("reply truncated")
        messages.append((seq, bytes(view[pos : pos + length])))
        pos += length
    if pos != len(data):
        raise ValueError("reply has trailing bytes")
    return Reply(status, request_id, publisher_id, epoch, first, through, messages, unavailable, error)


# ------------------------------------------------------------------------------ the server
class RetransmitServer:
    """Answers retransmission requests for one publisher session on its own thread.

    Every reply is bounded: at most ``max_reply_bytes`` of messages (less if the request asks
    for less), at most :data:`MAX_REQUEST_RANGE` sequences and :data:`MAX_RANGES_PER_REPLY`
    unavailable ranges.  A request that is malformed, unauthenticated, for another session or
    makes the server fail gets an error reply; the thread goes on serving.
    """

    def __init__(
        self,
        addresses: list[str],
        sent: SentLog,
        *,
        publisher_id: int,
        session_epoch: int,
        key: bytes | None = None,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        self.addresses = list(addresses)
        self.sent = sent
        self.publisher_id = publisher_id
        self.session_epoch = session_epoch
        self.max_reply_bytes = max_reply_bytes
        self._key = key
        self._lock = threading.Lock()
        self.stats: dict[str, Any] = {
            "requests": 0,
            "messages": 0,
            "bytes": 0,
            "from_ring": 0,
            "from_journal": 0,
            "unavailable_messages": 0,
            "errors": {},
        }
        import pynng

        # requests are 52 bytes (88 sealed): nng drops anything much larger before it reaches us
        self._socket = pynng.Rep0(recv_timeout=250, recv_max_size=4096)
        try:
            for address in self.addresses:
                self._socket.listen(address)
        except pynng.exceptions.AddressInUse as err:
            self._socket.close()
            raise OSError(
                f"cannot serve retransmissions on {address}: address already in use "
                "(pass retransmit=False or another retransmit address)"
            ) from err
        except pynng.NNGException as err:
            self._socket.close()
            raise OSError(f"cannot serve retransmissions on {address}: {err}") from err
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hkrt-retransmit", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import pynng

        while not self._closed.is_set():
            try:
                raw = self._socket.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                break
            except pynng.NNGException as err:  # a broken pipe etc.: keep serving
                log.debug("retransmission receive failed", extra={"error": str(err)})
                continue
            except RuntimeError:  # pynng cannot unpack an empty message: it was received, answer it
                raw = b""
            except Exception:
                log.exception("retransmission receive failed")
                continue
            try:
                reply = self.answer(raw)
            except Exception:  # never let one request end the service
                log.exception("retransmission request failed")
                self._count_error("internal")
                reply = self._seal(encode_reply(Reply(Status.INTERNAL, error="internal error")))
            try:
                self._socket.send(reply)
            except pynng.Closed:
                break
            except pynng.NNGException as err:
                log.debug("retransmission reply not sent", extra={"error": str(err)})

    def _seal(self, reply: bytes) -> bytes:
        return seal(self._key, reply) if self._key is not None else reply

    def _count_error(self, reason: str) -> None:
        with self._lock:
            errors = self.stats["errors"]
            errors[reason] = errors.get(reason, 0) + 1

    def _error(self, status: Status, reason: str, text: str, request: Request | None = None) -> bytes:
        self._count_error(reason)
        log.warning("retransmission request refused", extra={"reason": reason, "detail": text})
        reply = Reply(status, error=text, publisher_id=self.publisher_id, session_epoch=self.session_epoch)
        if request is not None:
            reply.request_id, reply.first, reply.through = request.request_id, request.first, request.first - 1
        return self._seal(encode_reply(reply))

    def answer(self, raw: bytes) -> bytes:
        """The reply (sealed when a key is set) to one request's bytes."""
        with self._lock:
            self.stats["requests"] += 1
        data: bytes | None = bytes(raw)
        if self._key is not None:
            data = unseal(self._key, raw)
            if data is None:
                text = "request has a bad tag" if is_sealed(raw) else "request is not sealed"
                return self._error(Status.UNAUTHENTICATED, "unauthenticated", f"{text}: this server needs the feed key")
        elif is_sealed(raw):
            return self._error(Status.BAD_REQUEST, "sealed_without_key", "request is sealed but this server has no key")
        assert data is not None
        try:
            request = decode_request(data)
        except _VersionError as err:
            return self._error(Status.UNSUPPORTED_VERSION, "unsupported_version", str(err))
        except ValueError as err:
            return self._error(Status.BAD_REQUEST, "bad_request", str(err))
        if (request.publisher_id, request.session_epoch) != (self.publisher_id, self.session_epoch):
            self._count_error("wrong_session")
            log.warning(
                "retransmission asked for another session",
                extra={
                    "publisher_id": request.publisher_id,
                    "session_epoch": request.session_epoch,
                    "serving_publisher_id": self.publisher_id,
                    "serving_session_epoch": self.session_epoch,
                },
            )
            reply = Reply(
                Status.WRONG_SESSION,
                request.request_id,
                self.publisher_id,
                self.session_epoch,
                request.first,
                request.last,
                unavailable=[(request.first, request.last)],
                error=(
                    f"wrong_session: this server serves publisher {self.publisher_id} "
                    f"session {self.session_epoch}, not {request.publisher_id} session {request.session_epoch}"
                ),
            )
            return self._seal(encode_reply(reply))
        last = min(request.last, request.first + MAX_REQUEST_RANGE - 1)
        cap = self.max_reply_bytes if request.max_bytes == 0 else min(request.max_bytes, self.max_reply_bytes)
        found = self.sent.collect(request.first, last, cap)
        if found.too_large is not None:
            return self._error(
                Status.TOO_LARGE,
                "too_large",
                f"message {found.too_large} does not fit in a reply of {cap} bytes; ask with a larger max_bytes",
                request,
            )
        status = Status.OK if found.through >= request.last else Status.PARTIAL
        reply = Reply(
            status,
            request.request_id,
            self.publisher_id,
            self.session_epoch,
            request.first,
            found.through,
            found.messages,
            found.unavailable,
        )
        body = encode_reply(reply)
        missing = sum(b - a + 1 for a, b in found.unavailable)
        with self._lock:
            s = self.stats
            s["messages"] += len(found.messages)
            s["bytes"] += sum(len(m) for _, m in found.messages)
            s["from_ring"] += found.from_ring
            s["from_journal"] += found.from_journal
            s["unavailable_messages"] += missing
        if missing:
            log.warning(
                "retransmission: messages no longer available",
                extra={"ranges": found.unavailable[:8], "messages": missing, "publisher_id": self.publisher_id},
            )
        return self._seal(body)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of ``stats``."""
        with self._lock:
            return {**self.stats, "errors": dict(self.stats["errors"])}

    def close(self) -> None:
        self._closed.set()
        self._socket.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


# ------------------------------------------------------------------------------ the client
@dataclass
class RetransmitResult:
    """What :func:`fetch_missing` got.

    ``messages``: the wire messages found, in sequence order (bytes as encoded, unsealed).
    ``unavailable``: inclusive sequence ranges the server says it cannot provide (evicted and
    not journaled, never sent, or another session): lost for good.  ``error``: None when every
    sequence of the request was answered (a message or unavailable); else why not (timeout,
    refused, bad reply, a cap reached), and the sequences after ``through`` are unresolved.
    """

    messages: list[bytes] = field(default_factory=list)
    unavailable: list[tuple[int, int]] = field(default_factory=list)
    error: str | None = None
    through: int = 0  # the last sequence answered (first - 1 when none)
    sequences: list[int] = field(default_factory=list)  # the sequence of each message
    requests: int = 0  # requests sent


def fetch_missing(
    address: str,
    publisher_id: int,
    session_epoch: int,
    first: int,
    last: int,
    *,
    key: bytes | None = None,
    timeout: float = 1.0,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_reply_bytes: int = DEFAULT_CLIENT_REPLY_BYTES,
) -> RetransmitResult:
    """Ask the retransmission server at ``address`` (see :func:`retransmit_address`) for the
    messages ``first .. last`` (inclusive) of one publisher session.

    Loops over partial replies (each at most ``max_reply_bytes`` of messages) until the range
    is answered, ``timeout`` seconds (for the whole call) have passed, or ``max_total_bytes``
    of messages were collected (the call holds at most that plus one reply).  Never
    raises for a server problem: it is in ``error``.  With ``key`` the requests are sealed
    and only replies sealed with the same key are accepted.
    """
    result = RetransmitResult(through=first - 1)
    if not (1 <= first <= last <= _UINT64_MAX) or not (0 <= publisher_id <= _UINT64_MAX):
        result.error = f"bad_range: invalid request {first}..{last}"
        return result
    if not 0 <= session_epoch <= _UINT64_MAX:
        result.error = f"bad_range: invalid session_epoch {session_epoch}"
        return result
    deadline = time.monotonic() + timeout
    per_reply = max(1024, min(max_reply_bytes, _UINT32_MAX))
    total = 0
    import pynng

    try:
        sock = pynng.Req0(recv_max_size=per_reply + _REPLY_SLACK)
    except pynng.NNGException as err:
        result.error = f"socket: {err}"
        return result
    try:
        sock.dial(address, block=False)
        cursor = first
        while cursor <= last:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                result.error = f"timeout: no complete answer from {address} within {timeout:g} s"
                break
            if total >= max_total_bytes:
                result.error = f"max_total_bytes: stopped after {total} bytes"
                break
            request = Request(secrets.randbits(64), publisher_id, session_epoch, cursor, last, per_reply)
            data = encode_request(request)
            ms = max(1, int(remaining * 1000))
            sock.send_timeout = ms
            sock.recv_timeout = ms
            try:
                sock.send(seal(key, data) if key is not None else data)
                result.requests += 1
                raw = sock.recv()
            except pynng.Timeout:
                result.error = f"timeout: no complete answer from {address} within {timeout:g} s"
                break
            except pynng.NNGException as err:
                result.error = f"transport: {err}"
                break
            except RuntimeError:  # pynng cannot unpack an empty message
                raw = b""
            before = len(result.messages)
            problem = _take_reply(raw, request, key, result)
            if problem is not None:
                result.error = problem
                break
            total += sum(len(m) for m in result.messages[before:])
            cursor = result.through + 1
    finally:
        sock.close()
    result.unavailable = _merge_ranges(result.unavailable)
    return result


def _take_reply(raw: bytes, request: Request, key: bytes | None, result: RetransmitResult) -> str | None:
    """Check one reply against its request and add it to ``result``; the error text if bad."""
    if key is not None:
        data = unseal(key, raw)
        if data is None:
            return "unauthenticated: reply not sealed with the feed key"
    elif is_sealed(raw):
        return "unauthenticated: the server seals its replies; a feed key is needed"
    else:
        data = bytes(raw)
    try:
        reply = decode_reply(data)
    except ValueError as err:
        return f"bad_reply: {err}"
    if reply.request_id != request.request_id and reply.status not in (Status.BAD_REQUEST, Status.UNAUTHENTICATED):
        return "bad_reply: answers another request"
    if reply.status == Status.WRONG_SESSION:
        result.unavailable.append((request.first, request.last))
        result.through = request.last
        return reply.error or "wrong_session"
    if reply.status not in (Status.OK, Status.PARTIAL):
        return reply.error or reply.status.name.lower()
    if reply.first != request.first or not request.first - 1 <= reply.through <= request.last:
        return "bad_reply: covers another range"
    if (reply.publisher_id, reply.session_epoch) != (request.publisher_id, request.session_epoch):
        return "bad_reply: from another session"
    # the reply must account for every sequence of first..through exactly once
    covered = [(s, s) for s, _ in reply.messages] + list(reply.unavailable)
    covered.sort()
    expect = reply.first
    for a, b in covered:
        if a != expect or b < a:
            return "bad_reply: messages and unavailable ranges do not cover the range"
        expect = b + 1
    if expect != reply.through + 1:
        return "bad_reply: messages and unavailable ranges do not cover the range"
    if reply.through < reply.first and reply.status != Status.OK:
        return "bad_reply: no progress"
    for seq, message in reply.messages:
        result.sequences.append(seq)
        result.messages.append(message)
    result.unavailable.extend(reply.unavailable)
    result.through = reply.through
    return None
