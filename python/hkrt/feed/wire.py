"""The spot wire format: FlatBuffers batches of spots, encoded and decoded in C++.

One message is one FlatBuffer (schema ``schemas/spot.fbs``, file identifier ``HKSP``): a
header (publisher, sequence, cycle, part, send and market time) and a vector of spots.  Every
decoder verifies the whole buffer first and raises :class:`WireError` with a ``reason`` on
anything it cannot trust.  Times on the wire are UTC epoch milliseconds; the Python side sees
naive China local time like everywhere else in hkrt.  docs/wire-format.md has the details.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from hkrt import _hkrt
from hkrt._hkrt import Spot
from hkrt.core.china_time import local_ms_to_utc_ms, utc_ms_to_local_datetime
from hkrt.core.columns import datetime_ms

SCHEMA_VERSION: int = _hkrt.WIRE_SCHEMA_VERSION
FILE_IDENTIFIER: bytes = _hkrt.WIRE_FILE_IDENTIFIER
#: Every ``WireError.reason``: "too_short", "bad_identifier", "malformed", "unsupported_version", and
#: "too_large" (only the agent's message size cap gives it).
DECODE_ERRORS: tuple[str, ...] = tuple(_hkrt.WIRE_DECODE_ERRORS)

_LOCAL_AT_EPOCH = utc_ms_to_local_datetime(0)  # China's wall clock at the UTC epoch: + UTC µs = local time
_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_REQUIRED_COLUMNS = ("symbol", "datetime", "close", "volume", "amount")
_OPTIONAL_COLUMNS = ("open", "high", "low", "yesterday_close", "name", "bid", "bid_volume", "ask", "ask_volume")
_BOOK_COLUMNS = ("bid", "bid_volume", "ask", "ask_volume")
_SEND_TIME_NOW = -(2**63)  # the encoder stamps the clock once the spots are encoded (just before the send)


class WireError(ValueError):
    """A message that cannot be decoded.  ``reason`` is one of :data:`DECODE_ERRORS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class WireHeader:
    """The header of one message.  Times are UTC epoch micro- and milliseconds, as on the wire."""

    schema_version: int
    publisher_id: int  # identifies the publisher (random per process start unless configured)
    sequence: int  # per publisher session, +1 per message, the first message is 1; 0 = not numbered
    cycle_id: int  # the collection cycle this message belongs to
    part_index: int  # 0-based index of this message within its cycle
    part_count: int  # messages in the cycle
    send_time_us: int  # publisher wall clock at sending, UTC epoch microseconds
    market_time_ms: int  # max spot datetime of the whole cycle; 0 = unknown
    session_epoch: int = 0  # UTC epoch µs when the publisher session began; 0 = not given
    heartbeat: bool = False  # an empty "still here" message; ``sequence`` is the last one sent
    simulated_time: bool = False  # spot times are simulated/replayed and may run ahead of the send time
    day_end: bool = False  # a heartbeat that ends the market day of ``market_time_ms``: nothing more comes for it
    changes_only: bool = False  # the source sends a symbol only when it changed (a push feed)

    @property
    def send_time(self) -> dt.datetime:
        """``send_time_us`` as naive China local time."""
        return _LOCAL_AT_EPOCH + dt.timedelta(microseconds=self.send_time_us)

    @property
    def market_time(self) -> dt.datetime | None:
        """``market_time_ms`` as naive China local time, None when unknown (0)."""
        return None if self.market_time_ms == 0 else _local_datetime(self.market_time_ms)


# ------------------------------------------------------------------------------ encoding
def encode_spots(
    spots: Spot | Iterable[Spot] | pd.DataFrame | Mapping[str, Any],
    *,
    publisher_id: int = 0,
    sequence: int = 0,
    cycle_id: int = 0,
    part_index: int = 0,
    part_count: int = 1,
    send_time: dt.datetime | int | None = None,
    market_time: dt.datetime | int | None = None,
    session_epoch: int = 0,
    simulated_time: bool = False,
    changes_only: bool = False,
) -> bytes:
    """Encode one message.

    ``spots`` is a list of :class:`Spot`, or columns: a DataFrame or a mapping of array-likes
    with ``symbol`` (str/bytes such as "SH600000"; a DataFrame may have ``market`` + ``code``
    instead), ``datetime`` (naive = China local time, tz-aware converted), ``close``,
    ``volume`` (shares), ``amount`` (yuan), and optionally ``open``, ``high``, ``low``,
    ``yesterday_close``, ``name`` and the book ``bid``, ``bid_volume``, ``ask``, ``ask_volume``
    (an (n, levels) array, or one sequence of levels per row).  A column input with an
    invalid symbol raises ValueError naming the row.

    ``send_time`` and ``market_time`` are datetimes (naive = China local time) or ints (UTC
    epoch microseconds for ``send_time``, milliseconds for ``market_time``).  ``send_time``
    defaults to now.  ``market_time`` defaults to the latest spot datetime when the message
    is the whole cycle (``part_count == 1``), else to 0 (unknown): a publisher splitting a
    cycle passes the cycle's latest datetime itself.

    ``sequence`` 0 (the default) means "not numbered": the agent never treats such a message
    as a duplicate or a gap.  A publisher numbers its messages 1, 2, ... within a session
    identified by ``publisher_id`` and ``session_epoch`` (UTC epoch µs of the session start,
    so a restart is recognised).  ``simulated_time``: the spot times are simulated or
    replayed and may run ahead of the send time (a live feed's may not).  ``changes_only``: the
    source sends a symbol only when it changed (QMT's whole-quote push), so a symbol's silence
    while the feed talks is not a gap in its data (docs/aggregation.md, gap volume).
    """
    header = [
        _check_int(publisher_id, "publisher_id", 0, _UINT64_MAX),
        _check_int(sequence, "sequence", 0, _UINT64_MAX),
        _check_int(cycle_id, "cycle_id", 0, _UINT64_MAX),
        _check_int(part_index, "part_index", 0, _UINT32_MAX),
        _check_int(part_count, "part_count", 1, _UINT32_MAX),
        _SEND_TIME_NOW if send_time is None else _epoch_us(send_time),
        0 if market_time is None else _epoch_ms(market_time, "market_time"),
        _check_int(session_epoch, "session_epoch", 0, _UINT64_MAX),
        False,
        bool(simulated_time),
        False,
        bool(changes_only),
    ]
    if part_index >= part_count:
        raise ValueError(f"part_index {part_index} must be below part_count {part_count}")
    auto_market_time = market_time is None and part_count == 1
    if isinstance(spots, Spot):
        spots = [spots]
    if isinstance(spots, pd.DataFrame):
        return _encode_columns(_frame_columns(spots), header, auto_market_time)
    if isinstance(spots, Mapping):
        unknown = set(spots) - set(_REQUIRED_COLUMNS) - set(_OPTIONAL_COLUMNS)
        if unknown:
            raise TypeError(f"unknown columns {sorted(unknown)}; accepted: {_REQUIRED_COLUMNS + _OPTIONAL_COLUMNS}")
        return _encode_columns(spots, header, auto_market_time)
    if isinstance(spots, (bytes, bytearray, memoryview, str)):
        raise TypeError("encode_spots takes Spot objects, a DataFrame or a mapping of columns")
    if not isinstance(spots, (list, tuple)):
        spots = list(spots)
    return _hkrt._wire_encode_spots(spots, tuple(header), auto_market_time)


def encode_heartbeat(
    *,
    publisher_id: int,
    session_epoch: int,
    sequence: int,
    market_time: dt.datetime | int | None = None,
    send_time: dt.datetime | int | None = None,
    simulated_time: bool = False,
    day_end: bool = False,
) -> bytes:
    """An idle publisher's "still here": an empty batch flagged as a heartbeat.

    ``sequence`` is the last sequence the publisher sent (not a new one), so a consumer that
    has less knows its tail was lost; ``market_time`` is where the publisher's market time
    stands.  Heartbeats are never journaled by the publisher or aggregated.

    ``day_end=True`` is the end-of-day marker: the source has nothing more for the market day
    of ``market_time`` (required then), so an agent on that day completes its last bars
    (docs/wire-format.md, "End of day").
    """
    if day_end and market_time is None:
        raise ValueError("an end-of-day heartbeat needs the market_time whose day it ends")
    header = [
        _check_int(publisher_id, "publisher_id", 0, _UINT64_MAX),
        _check_int(sequence, "sequence", 0, _UINT64_MAX),
        0,
        0,
        1,
        _SEND_TIME_NOW if send_time is None else _epoch_us(send_time),
        0 if market_time is None else _epoch_ms(market_time, "market_time"),
        _check_int(session_epoch, "session_epoch", 0, _UINT64_MAX),
        True,
        bool(simulated_time),
        bool(day_end),
        False,
    ]
    return _hkrt._wire_encode_spots([], tuple(header), False)


def _encode_columns(columns: Mapping[str, Any], header: list[int], auto_market_time: bool) -> bytes:
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns or columns[c] is None]
    if missing:
        raise TypeError(f"missing columns {missing}")
    symbol = _strings(columns["symbol"])
    if symbol.dtype.kind not in "SUO":
        raise TypeError("symbol must hold strings such as 'SH600000'")
    local_ms = datetime_ms(columns["datetime"])
    if auto_market_time:
        header[6] = local_ms_to_utc_ms(int(local_ms.max())) if len(local_ms) else 0

    def floats(name: str) -> np.ndarray:
        arr = np.asarray(columns[name], dtype=np.float64)
        return np.full(len(symbol), arr) if arr.ndim == 0 else np.ascontiguousarray(arr)

    def optional_floats(name: str) -> np.ndarray | None:
        return None if columns.get(name) is None else floats(name)

    name = columns.get("name")
    books = {c: _book(columns[c], c) for c in _BOOK_COLUMNS if columns.get(c) is not None}
    levels = max((b.shape[1] for b in books.values() if b.ndim == 2), default=0)
    books = {c: b if b.ndim == 1 or b.shape[1] == levels else _pad(b, levels) for c, b in books.items()}
    return _hkrt._wire_encode_columns(
        symbol,
        local_ms,
        floats("close"),
        floats("volume"),
        floats("amount"),
        optional_floats("open"),
        optional_floats("high"),
        optional_floats("low"),
        optional_floats("yesterday_close"),
        None if name is None else _strings(name),
        books.get("bid"),
        books.get("bid_volume"),
        books.get("ask"),
        books.get("ask_volume"),
        tuple(header),
    )


def _frame_columns(frame: pd.DataFrame) -> dict[str, Any]:
    if "datetime" not in frame.columns:
        frame = frame.reset_index()
    # A numpy-backed column straight from the frame's blocks (pandas' _get_column_array, ~0.5 µs) rather
    # than through a Series (~10 µs each, a third of a 5,500-row frame's encode); anything else, or a
    # pandas without it, goes through the Series.
    column_array = getattr(frame, "_get_column_array", None)
    columns: dict[str, Any] = {}
    for c in (*_REQUIRED_COLUMNS, *_OPTIONAL_COLUMNS):
        if c not in frame.columns:
            continue
        loc = frame.columns.get_loc(c)
        values = column_array(loc) if column_array is not None and isinstance(loc, int) else None
        columns[c] = values if isinstance(values, np.ndarray) else _column(frame[c])
    if "symbol" not in columns and "market" in frame.columns and "code" in frame.columns:
        columns["symbol"] = (frame["market"].astype(str) + frame["code"].astype(str)).to_numpy()
    return columns


def _column(series: pd.Series) -> Any:
    """A frame's column as numpy; an Arrow-backed string column (pandas' default for str) as UTF-8
    bytes read from its buffers, without making a Python str of every row."""
    chunked = getattr(series.array, "_pa_array", None)
    if chunked is None or series.dtype.kind not in "OU":
        return series.to_numpy()
    import pyarrow as pa  # type: ignore[import-untyped]  # already loaded: the column is made of it

    array = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return series.to_numpy()
    _, offsets_buffer, data_buffer = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=width)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    if not data.all():  # a NUL inside a string: fixed-width bytes would cut it there
        return series.to_numpy()
    null = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    return _hkrt._wire_utf8_column(offsets, data, null)


def _strings(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    return np.empty(0, dtype="S1") if arr.size == 0 else arr  # an empty column may have any dtype


def _book(values: Any, name: str) -> np.ndarray:
    """Book levels as a C-contiguous (n, levels) float64 matrix, ragged rows padded with 0; or a
    DataFrame's object column of per-row levels as it is (the encoder reads each row in place)."""
    if isinstance(values, (np.ndarray, pd.Series)) and values.dtype == object and values.ndim == 1:
        # one array or list of levels per row: read by the C++ encoder, never row by row here
        return np.asarray(values)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # ragged: one sequence of levels per row
        rows = [np.asarray([] if r is None else r, dtype=np.float64).ravel() for r in values]
        width = max((len(r) for r in rows), default=0)
        arr = np.zeros((len(rows), width))
        for i, r in enumerate(rows):
            arr[i, : len(r)] = r
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an (n, levels) array or one sequence of levels per row")
    return np.ascontiguousarray(arr)


def _pad(book: np.ndarray, levels: int) -> np.ndarray:
    out = np.zeros((book.shape[0], levels))
    out[:, : book.shape[1]] = book
    return out


# ------------------------------------------------------------------------------ decoding
def decode_spots(buf: bytes | bytearray | memoryview) -> list[Spot]:
    """The message's spots, in order.

    Rows whose market/code is not SH/SZ/BJ + six digits cannot be a :class:`Spot` and are left
    out (:func:`decode_columns` keeps them, flagged).  Book levels beyond five are dropped.
    Raises :class:`WireError` on a buffer that does not verify.
    """
    return _hkrt._wire_decode_spots(buf)


def decode_header(buf: bytes | bytearray | memoryview) -> WireHeader:
    """The message's header (the whole message is verified first; :class:`WireError` if bad)."""
    return WireHeader(*_hkrt._wire_decode_header(buf))


def decode_columns(buf: bytes | bytearray | memoryview) -> dict[str, np.ndarray]:
    """The message's spots as numpy columns, ready for ``SpotAgent.ingest_columns(**columns)``.

    ``symbol`` (dtype S8, normalised: b"SH600000"; ``b""`` for a row whose market/code is
    invalid, which the agent then rejects as ``invalid_symbol``), ``datetime``
    (datetime64[ms], naive China local time), ``open``, ``high``, ``low``, ``close``,
    ``volume`` (shares), ``amount`` (yuan) as float64.  All but ``symbol`` view one buffer the
    C++ decoder filled for this call (no copy), kept alive by the arrays.  Raises
    :class:`WireError` on a buffer that does not verify.
    """
    return _hkrt._wire_decode_columns(buf)


# ------------------------------------------------------------------------------ helpers
def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{name} {number} is outside [{low}, {high}]")
    return number


def _epoch_ms(value: Any, name: str) -> int:
    """An int (UTC epoch ms) as is; a datetime (naive = China local time) converted."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return _check_int(value, name, _INT64_MIN, _INT64_MAX)
    try:
        local = int(datetime_ms([value])[0])
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a datetime (naive = China local time) or int epoch ms, got {value!r}") from e
    return local_ms_to_utc_ms(local)


def _epoch_us(value: Any) -> int:
    """send_time: an int is UTC epoch microseconds; a datetime (naive = China local) is converted."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return _check_int(value, "send_time", _INT64_MIN, _INT64_MAX)
    return _epoch_ms(value, "send_time") * 1000


def _local_datetime(epoch_ms: int) -> dt.datetime:
    return utc_ms_to_local_datetime(epoch_ms)
