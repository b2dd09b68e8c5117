"""The spot wire format: round trips, header, every WireError reason, hostile input."""

from __future__ import annotations

import copy
import datetime as dt
import math
import pickle
import threading
import weakref

import flatbuffers
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from hkrt import _fbs
from hkrt.feed.wire import DECODE_ERRORS, FILE_IDENTIFIER, SCHEMA_VERSION, WireError, WireHeader

T0 = dt.datetime(2026, 11, 20, 9, 30, 5)  # China local
T0_EPOCH_MS = 1_795_138_205_000  # 2026-11-20 01:30:05 UTC
CHINA = dt.timezone(dt.timedelta(hours=8))


def full_spot(symbol: str = "SH600000", when: dt.datetime = T0, **kw: object) -> hkrt.Spot:
    fields: dict[str, object] = {
        "name": "浦发银行",
        "yesterday_close": 9.87,
        "open": 9.9,
        "high": 10.2,
        "low": 9.85,
        "close": 10.1,
        "volume": 12_345_600,
        "amount": 123_456_789.5,
        "bid": [10.09, 10.08, 10.07, 10.06, 10.05],
        "bid_volume": [100, 200, 300, 400, 500],
        "ask": [10.1, 10.11, 10.12, 10.13, 10.14],
        "ask_volume": [1100, 1200, 1300, 1400, 0],
    }
    fields.update(kw)
    return hkrt.Spot(symbol, when, **fields)


def raw_batch(
    spots: list[dict[str, object]] | None = None,
    *,
    version: int = SCHEMA_VERSION,
    header: bool = True,
    spots_vector: bool = True,
    identifier: bytes = b"HKSP",
) -> bytes:
    """A batch built with the generated pure-Python code; spot dicts may leave out anything."""
    b = flatbuffers.Builder(256)
    records = []
    for s in [{"market": "SH", "code": "600000", "datetime": T0_EPOCH_MS, "close": 10.0}] if spots is None else spots:
        market = b.CreateString(s["market"]) if "market" in s else None
        code = b.CreateString(s["code"]) if "code" in s else None
        _fbs.SpotRecordStart(b)
        if market is not None:
            _fbs.SpotRecordAddMarket(b, market)
        if code is not None:
            _fbs.SpotRecordAddCode(b, code)
        if "datetime" in s:
            _fbs.SpotRecordAddDatetime(b, _fbs.CreateTimestamp(b, s["datetime"]))
        _fbs.SpotRecordAddClose(b, s.get("close", 0.0))
        records.append(_fbs.SpotRecordEnd(b))
    _fbs.SpotBatchStartSpotsVector(b, len(records))
    for r in reversed(records):
        b.PrependUOffsetTRelative(r)
    vector = b.EndVector()
    _fbs.BatchHeaderStart(b)
    _fbs.BatchHeaderAddSchemaVersion(b, version)
    _fbs.BatchHeaderAddSequence(b, 1)
    _fbs.BatchHeaderAddPartCount(b, 1)
    head = _fbs.BatchHeaderEnd(b)
    _fbs.SpotBatchStart(b)
    if header:
        _fbs.SpotBatchAddHeader(b, head)
    if spots_vector:
        _fbs.SpotBatchAddSpots(b, vector)
    b.Finish(_fbs.SpotBatchEnd(b), file_identifier=identifier)
    return bytes(b.Output())


def reason(buf: object) -> str:
    with pytest.raises(WireError) as info:
        hkrt.wire.decode_spots(buf)  # type: ignore[arg-type]
    for decode in (hkrt.wire.decode_header, hkrt.wire.decode_columns):
        with pytest.raises(WireError) as other:
            decode(buf)  # type: ignore[arg-type]
        assert other.value.reason == info.value.reason
    assert info.value.reason in DECODE_ERRORS
    return info.value.reason


# ------------------------------------------------------------------------------ round trips
def test_spot_list_round_trip_every_field() -> None:
    plain = hkrt.Spot("BJ830799", dt.datetime(2026, 11, 20, 14, 59, 59, 250_000), close=3.5, volume=100, amount=350)
    nan_book = full_spot("000001.SZ", name="平安银行", bid=[math.nan, 0, 1.5])
    spots = [full_spot(), plain, nan_book]
    out = hkrt.wire.decode_spots(hkrt.wire.encode_spots(spots))
    assert out[:2] == spots[:2]
    assert out[0].name == "浦发银行" and out[0].bid_volume == [100, 200, 300, 400, 500]
    assert out[1].datetime == dt.datetime(2026, 11, 20, 14, 59, 59, 250_000)
    assert out[2].symbol == "SZ000001" and out[2].name == "平安银行"
    assert math.isnan(out[2].bid[0]) and out[2].bid[1:] == [0, 1.5, 0, 0]
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots([])) == []
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots(full_spot())) == [full_spot()]
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots(iter(spots[:1]))) == spots[:1]


def test_decoded_spots_are_ordinary_spots() -> None:
    """Decoded Spots share one allocation with their Python object: they must behave as any other Spot."""
    long_name = "中国石油天然气股份有限公司" * 3  # past std::string's inline buffer
    spots = [full_spot(name=long_name), full_spot("SZ000001", name="平安银行")]
    out = hkrt.wire.decode_spots(hkrt.wire.encode_spots(spots))
    assert out == spots and out[0].name == long_name
    kept = out[1]
    del out  # the list goes; the Spot it held stays whole
    assert kept == spots[1] and kept.bid == spots[1].bid
    kept.name, kept.close, kept.bid = long_name, 11.5, [1.0, 2.0]
    assert (kept.name, kept.close, kept.bid) == (long_name, 11.5, [1.0, 2.0, 0, 0, 0])
    assert copy.copy(kept) == kept and pickle.loads(pickle.dumps(kept)) == kept
    assert weakref.ref(kept)() is kept
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots([kept], send_time=1)) == [kept]
    assert hkrt.wire.encode_spots([kept], send_time=1) == hkrt.wire.encode_spots([copy.copy(kept)], send_time=1)
    kept.__init__("SH600519", T0, close=1.0)  # re-initialised: pybind11 gives it a heap value, no crash
    assert kept.symbol == "SH600519" and kept.name == ""


def test_the_wire_carries_utc_epoch_ms() -> None:
    buf = hkrt.wire.encode_spots([full_spot()])
    assert buf[4:8] == FILE_IDENTIFIER == b"HKSP"
    batch = _fbs.SpotBatch.GetRootAs(buf)
    record = batch.Spots(0)
    assert record.Datetime().EpochMs() == T0_EPOCH_MS
    assert record.Market() == b"SH" and record.Code() == b"600000"
    assert record.Name().decode() == "浦发银行"
    assert list(record.AskVolumeAsNumpy()) == [1100, 1200, 1300, 1400]  # the trailing zero level is not sent
    assert batch.Header().SchemaVersion() == SCHEMA_VERSION == 1


def test_decode_columns() -> None:
    spots = [full_spot(), full_spot("SZ300750", T0 + dt.timedelta(seconds=3), close=200.5)]
    cols = hkrt.wire.decode_columns(hkrt.wire.encode_spots(spots))
    assert list(cols) == ["symbol", "datetime", "open", "high", "low", "close", "volume", "amount"]
    assert cols["symbol"].dtype == np.dtype("S8")
    assert cols["symbol"].tolist() == [b"SH600000", b"SZ300750"]
    assert cols["datetime"].dtype == np.dtype("datetime64[ms]")
    assert cols["datetime"].tolist() == [T0, T0 + dt.timedelta(seconds=3)]
    assert cols["close"].tolist() == [10.1, 200.5]
    for c in ("open", "high", "low", "volume", "amount"):
        assert cols[c].dtype == np.float64 and cols[c][0] == getattr(spots[0], c)
    agent = hkrt.SpotAgent(["MIN"])
    assert agent.ingest_columns(**cols) == 2


def test_columns_and_dataframe_round_trip() -> None:
    spots = [full_spot(), full_spot("SZ000001", name="", bid=[1.0], bid_volume=[], ask=[], ask_volume=[])]
    frame = pd.DataFrame(
        {
            "symbol": [s.symbol for s in spots],
            "datetime": [s.datetime for s in spots],
            **{c: [getattr(s, c) for s in spots] for c in ("open", "high", "low", "close", "volume", "amount")},
            "yesterday_close": [s.yesterday_close for s in spots],
            "name": [s.name for s in spots],
            **{c: [getattr(s, c) for s in spots] for c in ("bid", "bid_volume", "ask", "ask_volume")},
            "ignored": [1, 2],
        }
    )
    header = {"send_time": 5, "sequence": 9}
    expected = hkrt.wire.encode_spots(spots, **header)
    assert hkrt.wire.encode_spots(frame, **header) == expected  # byte for byte the same message
    assert hkrt.wire.encode_spots(frame.set_index("datetime"), **header) == expected
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots(frame)) == spots
    ragged = {c: frame[c].tolist() for c in frame.columns if c != "ignored"}
    ragged["bid"] = [[10.09, 10.08, 10.07, 10.06, 10.05], [1.0]]  # one sequence of levels per row
    assert hkrt.wire.encode_spots(ragged, **header) == expected
    by_code = frame.drop(columns="symbol").assign(market=["SH", "SZ"], code=["600000", "000001"])
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots(by_code)) == spots


@pytest.mark.parametrize(
    "symbols",
    [
        ["SH600000", "600519.SH", "bj830799"],
        np.array(["SH600000", "600519.SH", "bj830799"]),
        np.array([b"SH600000", b"600519.SH", b"bj830799"]),
        np.array(["SH600000", "600519.SH", "bj830799"], dtype=object),
        pd.Series(["SH600000", "600519.SH", "bj830799"], dtype="string"),
    ],
)
def test_symbol_column_types(symbols: object) -> None:
    times = np.array(["2026-11-20T09:30:05", "2026-11-20T09:30:06", "2026-11-20T09:30:07"], dtype="datetime64[ms]")
    buf = hkrt.wire.encode_spots({"symbol": symbols, "datetime": times, "close": [1, 2, 3], "volume": 0, "amount": 0.0})
    cols = hkrt.wire.decode_columns(buf)
    assert cols["symbol"].tolist() == [b"SH600000", b"SH600519", b"BJ830799"]
    assert (cols["datetime"] == times).all()
    assert cols["open"].tolist() == [0, 0, 0]  # optional columns left out are 0 (= unknown)


def test_aware_datetimes_are_converted() -> None:
    utc = pd.Timestamp("2026-11-20 01:30:05", tz="UTC")
    buf = hkrt.wire.encode_spots(
        {"symbol": ["SH600000"], "datetime": [utc], "close": [1.0], "volume": [1], "amount": [1]}
    )
    assert _fbs.SpotBatch.GetRootAs(buf).Spots(0).Datetime().EpochMs() == T0_EPOCH_MS
    assert hkrt.wire.decode_spots(buf)[0].datetime == T0


def test_wide_book_from_columns() -> None:
    book = np.arange(1, 21, dtype=float).reshape(2, 10)  # ten levels (level 2)
    cols = {"symbol": ["SH600000", "SH600001"], "datetime": [T0, T0], "close": [1, 1], "volume": [1, 1]}
    buf = hkrt.wire.encode_spots({**cols, "amount": [1, 1], "bid": book, "ask_volume": np.ones((2, 3))})
    record = _fbs.SpotBatch.GetRootAs(buf).Spots(1)
    assert record.BidAsNumpy().tolist() == book[1].tolist()  # the wire keeps every level
    assert record.AskVolumeLength() == 3
    spots = hkrt.wire.decode_spots(buf)
    assert spots[1].bid == [11, 12, 13, 14, 15]  # a Spot keeps five
    assert spots[1].ask_volume == [1, 1, 1, 0, 0]


# ------------------------------------------------------------------------------ header
def test_header_fields() -> None:
    buf = hkrt.wire.encode_spots(
        [full_spot()],
        publisher_id=2**64 - 1,
        sequence=42,
        cycle_id=7,
        part_index=2,
        part_count=3,
        send_time=(T0_EPOCH_MS + 123) * 1000 + 456,
        market_time=T0,
    )
    h = hkrt.wire.decode_header(buf)
    assert h == WireHeader(1, 2**64 - 1, 42, 7, 2, 3, (T0_EPOCH_MS + 123) * 1000 + 456, T0_EPOCH_MS)
    assert h.send_time == T0 + dt.timedelta(milliseconds=123, microseconds=456)
    assert h.market_time == T0
    with pytest.raises(AttributeError):  # frozen
        h.sequence = 1  # type: ignore[misc]


def test_header_times() -> None:
    later = T0 + dt.timedelta(seconds=9)
    spots = [full_spot(when=later), full_spot()]
    # One-part message: market_time defaults to its latest spot; a part of a cycle: unknown.
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots(spots)).market_time == later
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots(spots, part_count=2)).market_time_ms == 0
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots(spots, part_count=2)).market_time is None
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots([])).market_time_ms == 0
    frame = pd.DataFrame({"symbol": ["SH600000"] * 2, "datetime": [later, T0], "close": 1.0, "volume": 1, "amount": 1})
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots(frame)).market_time == later
    # send_time: now by default; datetimes naive (China) or aware; ints are UTC epoch microseconds.
    now_ms = dt.datetime.now(dt.timezone.utc).timestamp() * 1000
    assert abs(hkrt.wire.decode_header(hkrt.wire.encode_spots([])).send_time_us / 1000 - now_ms) < 5_000
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots([], send_time=T0)).send_time_us == T0_EPOCH_MS * 1000
    aware = dt.datetime(2026, 11, 20, 1, 30, 5, tzinfo=dt.timezone.utc)
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots([], send_time=aware)).send_time_us == T0_EPOCH_MS * 1000
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots([], send_time=T0.replace(tzinfo=CHINA))).send_time == T0
    assert hkrt.wire.decode_header(hkrt.wire.encode_spots([], send_time=np.int64(-5))).send_time_us == -5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sequence": -1}, ValueError),
        ({"publisher_id": 2**64}, ValueError),
        ({"part_count": 0}, ValueError),
        ({"part_index": 1, "part_count": 1}, ValueError),
        ({"cycle_id": 1.5}, TypeError),
        ({"sequence": True}, TypeError),
        ({"send_time": "soon"}, TypeError),
    ],
)
def test_bad_header_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        hkrt.wire.encode_spots([], **kwargs)  # type: ignore[arg-type]


def test_bad_encoder_input() -> None:
    cols = {"symbol": ["SH600000", "XX123"], "datetime": [T0, T0], "close": [1, 1], "volume": [1, 1], "amount": [1, 1]}
    with pytest.raises(ValueError, match="row 1: invalid symbol 'XX123'"):
        hkrt.wire.encode_spots(cols)
    with pytest.raises(TypeError, match=r"spots\[1\] is a str"):
        hkrt.wire.encode_spots([full_spot(), "SH600000"])
    with pytest.raises(TypeError, match="unknown columns"):
        hkrt.wire.encode_spots({**cols, "colse": [1, 1]})
    with pytest.raises(TypeError, match="missing columns"):
        hkrt.wire.encode_spots({"symbol": ["SH600000"], "datetime": [T0]})
    with pytest.raises(ValueError, match="one value per symbol"):
        hkrt.wire.encode_spots({**cols, "symbol": ["SH600000"]})
    with pytest.raises(TypeError):
        hkrt.wire.encode_spots(b"not spots")


# ------------------------------------------------------------------------------ rejects
def test_reject_reasons() -> None:
    good = hkrt.wire.encode_spots([full_spot()])
    assert DECODE_ERRORS == ("too_short", "bad_identifier", "malformed", "unsupported_version", "too_large")
    assert reason(b"") == "too_short"
    assert reason(good[:7]) == "too_short"
    assert reason(good[:8]) == "malformed"
    assert reason(good[:4] + b"HKSQ" + good[8:]) == "bad_identifier"
    assert reason(raw_batch(identifier=b"ABCD")) == "bad_identifier"
    assert reason(raw_batch(version=2)) == "unsupported_version"
    assert reason(raw_batch(version=0)) == "unsupported_version"
    # A later version is reported as such even when its spots do not verify against this schema.
    assert reason(raw_batch([{"code": "600000"}], version=2)) == "unsupported_version"
    with pytest.raises(ValueError, match=r"^bad_identifier: file identifier is b'\\x00") as info:
        hkrt.wire.decode_spots(b"\0" * 16)
    assert isinstance(info.value, WireError) and info.value.reason == "bad_identifier"


@pytest.mark.parametrize(
    "missing",
    ["market", "code", "datetime", "header", "spots"],
)
def test_missing_required_fields_are_malformed(missing: str) -> None:
    spot = {"market": "SH", "code": "600000", "datetime": T0_EPOCH_MS, "close": 10.0}
    assert hkrt.wire.decode_spots(raw_batch([spot]))[0].close == 10.0  # complete: fine
    spot.pop(missing, None)
    buf = raw_batch([spot], header=missing != "header", spots_vector=missing != "spots")
    assert reason(buf) == "malformed"


def test_every_truncation_is_rejected() -> None:
    good = hkrt.wire.encode_spots([full_spot(), full_spot("SZ000001")])
    expected = hkrt.wire.decode_spots(good)
    for n in range(len(good)):
        try:
            out = hkrt.wire.decode_spots(good[:n])
        except WireError as e:
            assert e.reason == ("too_short" if n < 8 else "malformed")
        else:  # only cutting the final alignment padding leaves every object whole
            assert len(good) - n < 4 and good[n:] == bytes(len(good) - n)
            assert out == expected


def test_bit_flips_never_crash() -> None:
    good = hkrt.wire.encode_spots([full_spot(), full_spot("SZ000001")])
    outcomes = set()
    for i in range(len(good)):
        for bit in range(8):
            bad = bytearray(good)
            bad[i] ^= 1 << bit
            try:
                hkrt.wire.decode_columns(bad)
                hkrt.wire.decode_spots(bad)
                outcomes.add("ok")
            except WireError as e:
                outcomes.add(e.reason)
    assert {"ok", "bad_identifier", "malformed"} <= outcomes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_crash(data: bytes) -> None:
    for buf in (data, data[:4] + b"HKSP" + data[8:]):
        try:
            hkrt.wire.decode_spots(buf)
            hkrt.wire.decode_columns(buf)
            hkrt.wire.decode_header(buf)
        except WireError as e:
            assert e.reason in DECODE_ERRORS


def test_invalid_market_or_code_flags_the_row() -> None:
    rows = [
        {"market": "SH", "code": "600000", "datetime": T0_EPOCH_MS, "close": 1.0},
        {"market": "XX", "code": "600000", "datetime": T0_EPOCH_MS, "close": 2.0},
        {"market": "SZ", "code": "12345", "datetime": T0_EPOCH_MS, "close": 3.0},
        {"market": "sz", "code": "000001", "datetime": T0_EPOCH_MS, "close": 4.0},  # case is forgiven
    ]
    buf = raw_batch(rows)
    cols = hkrt.wire.decode_columns(buf)
    assert cols["symbol"].tolist() == [b"SH600000", b"", b"", b"SZ000001"]
    assert cols["close"].tolist() == [1, 2, 3, 4]
    assert [s.close for s in hkrt.wire.decode_spots(buf)] == [1, 4]  # a Spot needs a valid symbol
    agent = hkrt.SpotAgent(["MIN"])
    assert agent.ingest_columns(**cols) == 2
    assert agent.stats()["rejected"]["invalid_symbol"] == 2


# ------------------------------------------------------------------------------ buffers
def test_any_buffer_object() -> None:
    good = hkrt.wire.encode_spots([full_spot()])
    expected = [full_spot()]
    assert hkrt.wire.decode_spots(bytearray(good)) == expected
    assert hkrt.wire.decode_spots(memoryview(good)) == expected
    assert hkrt.wire.decode_spots(np.frombuffer(good, dtype=np.uint8)) == expected
    assert hkrt.wire.decode_spots(memoryview(b":spot:" + good)[6:]) == expected  # misaligned: copied, same result
    with pytest.raises(TypeError):
        hkrt.wire.decode_spots("not bytes")  # type: ignore[arg-type]
    with pytest.raises(BufferError):
        hkrt.wire.decode_spots(memoryview(np.frombuffer(good * 2, dtype=np.uint8)[::2]))


def test_python_reads_what_cpp_writes_and_back() -> None:
    buf = hkrt.wire.encode_spots([full_spot()], sequence=5)
    batch = _fbs.SpotBatch.GetRootAs(buf)
    assert _fbs.SpotBatch.SpotBatchBufferHasIdentifier(buf, 0)
    assert batch.Header().Sequence() == 5 and batch.SpotsLength() == 1
    record = batch.Spots(0)
    assert (record.Close(), record.Volume(), record.Amount()) == (10.1, 12_345_600, 123_456_789.5)
    assert hkrt.wire.decode_header(raw_batch()).sequence == 1


def test_concurrent_threads() -> None:
    spots = [full_spot(f"SH{600000 + i:06d}") for i in range(2000)]
    buf = hkrt.wire.encode_spots(spots, send_time=0)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert hkrt.wire.encode_spots(spots, send_time=0) == buf
                assert len(hkrt.wire.decode_columns(buf)["symbol"]) == 2000
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ------------------------------------------------------------------------------ properties
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
prices = st.one_of(finite, st.just(math.nan), st.just(0.0))
symbols = st.builds(lambda m, c: f"{m}{c:06d}", st.sampled_from(["SH", "SZ", "BJ"]), st.integers(0, 999_999))
times = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
)
levels = st.lists(prices, max_size=5)
spot_strategy = st.builds(
    hkrt.Spot,
    symbols,
    times,
    name=st.text(max_size=8),
    yesterday_close=prices,
    open=prices,
    high=prices,
    low=prices,
    close=prices,
    volume=prices,
    amount=prices,
    bid=levels,
    bid_volume=levels,
    ask=levels,
    ask_volume=levels,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(spot_strategy, max_size=20), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 2))
def test_round_trip_property(spots: list[hkrt.Spot], sequence: int, part: int) -> None:
    buf = hkrt.wire.encode_spots(spots, sequence=sequence, part_index=part, part_count=part + 1, send_time=0)
    assert hkrt.wire.decode_spots(buf) == spots
    h = hkrt.wire.decode_header(buf)
    assert (h.sequence, h.part_index, h.part_count, h.send_time_us) == (sequence, part, part + 1, 0)
    cols = hkrt.wire.decode_columns(buf)
    assert cols["symbol"].astype(str).tolist() == [s.symbol for s in spots]
    assert cols["datetime"].tolist() == [s.datetime for s in spots]
    np.testing.assert_array_equal(cols["close"], np.array([s.close for s in spots], dtype=float))
    frame = pd.DataFrame(
        {
            "symbol": [s.symbol for s in spots],
            "datetime": np.array([s.datetime for s in spots], dtype="datetime64[ms]"),
            **{
                c: [getattr(s, c) for s in spots]
                for c in ("open", "high", "low", "close", "volume", "amount", "yesterday_close", "name")
            },
            **{c: [getattr(s, c) for s in spots] for c in ("bid", "bid_volume", "ask", "ask_volume")},
        }
    )
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots(frame)) == spots
