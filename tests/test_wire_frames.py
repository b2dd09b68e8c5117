"""Encoding a DataFrame whose book columns hold one row of levels per cell (arrays, lists, None):
read in C++ (hkrt._hkrt._wire_book_matrix), never row by row in Python."""

from __future__ import annotations

import datetime as dt

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
    assert [s.name for s in hkrt.wire.decode_spots(hkrt.wire.encode_spots(chunked))] == [
        "n4",
        "n5",
        "n0",
        "n1",
    ]
