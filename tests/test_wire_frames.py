"""Encoding a DataFrame whose book columns hold one row of levels per cell (arrays, lists, None):
read in place by the C++ encoder, never row by row in Python."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

import hkrt

T = dt.datetime(2026, 11, 20, 10, 0, 3)


def frame(bid: list[object]) -> pd.DataFrame:
    n = len(bid)
    return pd.DataFrame(
        {
            "symbol": [f"SH60000{i}" for i in range(n)],
            "datetime": [T] * n,
            "close": np.arange(n) + 10.0,
            "volume": np.full(n, 100.0),
            "amount": np.full(n, 1000.0),
            "bid": bid,
        }
    )


def test_book_cells_of_every_kind_encode_as_their_levels() -> None:
    cells: list[object] = [np.array([9.9, 9.8, 9.7]), [9.5, 9.4], (9.1,), None, np.array([8.0, 7.0])[::-1], [1, 2]]
    spots = hkrt.wire.decode_spots(hkrt.wire.encode_spots(frame(cells)))
    assert [s.bid[:3] for s in spots] == [
        [9.9, 9.8, 9.7], [9.5, 9.4, 0.0], [9.1, 0.0, 0.0], [0.0, 0.0, 0.0], [7.0, 8.0, 0.0], [1.0, 2.0, 0.0],
    ]  # fmt: skip


def test_a_frame_with_book_columns_encodes_like_its_columns() -> None:
    n = 50
    rng = np.random.default_rng(3)
    book = np.round(rng.uniform(1, 100, (n, 5)), 2)
    columns = {
        "symbol": np.array([f"SZ{i:06d}" for i in range(n)]),
        "datetime": np.full(n, np.datetime64(T, "ms")),
        "close": book[:, 0],
        "volume": np.full(n, 100.0),
        "amount": np.full(n, 1000.0),
        "bid": book,
        "ask_volume": book * 100,
    }
    as_frame = pd.DataFrame({**columns, "bid": list(book), "ask_volume": list(book * 100)})
    assert hkrt.wire.decode_spots(hkrt.wire.encode_spots(as_frame)) == hkrt.wire.decode_spots(
        hkrt.wire.encode_spots(columns)
    )


def test_a_cell_that_is_not_levels_names_its_column_and_row() -> None:
    with pytest.raises(TypeError, match=r"bid\[1\]"):
        hkrt.wire.encode_spots(frame([[1.0], "abc"]))
    with pytest.raises(TypeError, match=r"bid\[0\]\[1\] is not a number"):
        hkrt.wire.encode_spots(frame([[1.0, "x"]]))


def test_arrow_string_columns_keep_every_character() -> None:
    """pandas' Arrow strings are read from their buffers; a NUL inside a name still survives."""
    names = ["浦发银行", "", "a\x00b", "x"]
    got = frame([None] * 4).assign(name=pd.array(names, dtype="string[pyarrow]"))
    spots = hkrt.wire.decode_spots(hkrt.wire.encode_spots(got))
    assert [s.name for s in spots] == names
    clean = got.assign(name=pd.array(["浦发银行", "", None, "x"], dtype="string[pyarrow]"))
    assert [s.name for s in hkrt.wire.decode_spots(hkrt.wire.encode_spots(clean))] == [
        "浦发银行",
        "",
        "",
        "x",
    ]


def test_sliced_and_chunked_arrow_columns_read_the_right_rows() -> None:
    """A frame sliced (Arrow arrays with an offset) or concatenated (several chunks) encodes its own rows."""
    base = frame([[1.0]] * 6).assign(name=pd.array([f"n{i}" for i in range(6)], dtype="string[pyarrow]"))
    base = base.assign(symbol=pd.array(list(base["symbol"]), dtype="string[pyarrow]"))
    sliced = base.iloc[2:5]
    assert [(s.symbol, s.name) for s in hkrt.wire.decode_spots(hkrt.wire.encode_spots(sliced))] == [
        ("SH600002", "n2"), ("SH600003", "n3"), ("SH600004", "n4"),
    ]  # fmt: skip
    chunked = pd.concat([base.iloc[4:], base.iloc[:2]], ignore_index=True)
    assert [s.name for s in hkrt.wire.decode_spots(hkrt.wire.encode_spots(chunked))] == ["n4", "n5", "n0", "n1"]


def test_every_kind_of_book_cell_gives_the_bytes_of_the_spot_list() -> None:
    """Book cells are read in place by the encoder (no matrix): lists, tuples, arrays of mixed lengths,
    NaN and -0.0 levels, strided, unaligned, int and big-endian arrays, None and NaN for no book, more
    than five levels; the message is byte for byte the one the same rows give as an (n, levels) matrix."""
    unaligned = np.frombuffer(b"\x00" + np.array([4.5, 4.25]).tobytes(), dtype=np.float64, offset=1)
    cells: list[object] = [
        np.array([9.9, 9.8, 9.7, 9.6, 9.5]),
        [9.5, 9.4],
        (9.1,),
        None,
        np.array([8.0, 7.0, 6.0])[::-1],  # strided
        [1, 2],
        np.array([math.nan, 0.0, -0.0, 3.0]),
        np.array([5.0, 0.0, 0.0]),  # trailing zero levels are not written
        unaligned,
        np.array([3, 2, 1], dtype=np.int32),
        np.array([2.5, 1.5], dtype=">f8"),
        np.arange(1.0, 8.0),  # seven levels: the wire keeps them
        float("nan"),
        [],
    ]
    n = len(cells)
    width = 7
    matrix = np.zeros((n, width))
    for i, cell in enumerate(cells):
        levels = [] if cell is None or isinstance(cell, float) else list(np.asarray(cell, dtype=np.float64))
        matrix[i, : len(levels)] = levels
    as_frame = frame(cells).assign(symbol=[f"SH{600000 + i}" for i in range(n)], ask_volume=list(matrix * 100))
    as_columns = {c: as_frame[c].to_numpy() for c in ("symbol", "close", "volume", "amount")}
    as_columns |= {"datetime": as_frame["datetime"], "bid": matrix, "ask_volume": matrix * 100}
    header = {"send_time": 7, "sequence": 3}
    expected = hkrt.wire.encode_spots(as_columns, **header)
    assert hkrt.wire.encode_spots(as_frame, **header) == expected
    mixed = as_columns | {"bid": as_frame["bid"].to_numpy()}  # one side by row, the other a matrix
    assert hkrt.wire.encode_spots(mixed, **header) == expected
    spots = hkrt.wire.decode_spots(expected)
    assert hkrt.wire.encode_spots(spots[:11], **header) == hkrt.wire.encode_spots(as_frame.iloc[:11], **header)
    assert spots[4].bid[:3] == [6.0, 7.0, 8.0] and spots[8].bid[:2] == [4.5, 4.25]
    assert math.isnan(spots[6].bid[0]) and spots[6].bid[1:4] == [0.0, 0.0, 3.0]


def test_a_book_column_of_the_wrong_length_is_refused() -> None:
    columns = {"symbol": ["SH600000", "SH600001"], "datetime": [T, T], "close": [1, 2], "volume": 0, "amount": 0}
    rows = np.empty(1, dtype=object)
    rows[0] = np.array([1.0])
    with pytest.raises(ValueError, match="bid must be an"):
        hkrt.wire.encode_spots(columns | {"bid": rows})
