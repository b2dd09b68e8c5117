"""``hkrt export``: stored bars (or the PostgreSQL recorder's spots) to one Parquet or CSV file."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hkrt.core.ktype import KType

if TYPE_CHECKING:
    import pandas as pd


@click.command()
@click.option(
    "--store",
    "store_dir",
    default=None,
    help="Store directory, ~ expanded (default: $HKRT_STORE, $HKRT_HOME/store or ~/.local/share/hkrt/store; "
    "on Windows %LOCALAPPDATA%\\hkrt\\store), or the PostgreSQL recorder's database as a postgresql:// URL.",
)
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    help="Symbol in any spelling (SH600000, sh600000, 600000.SH); repeat it; default: all.",
)
@click.option(
    "--kind",
    type=click.Choice(["bars", "spots"]),
    default="bars",
    show_default=True,
    help="What to export: bars of --ktype, or spots (recorded only in PostgreSQL: SpotAgent(store_spots=True)).",
)
@click.option("--ktype", default="DAY", show_default=True, help="Period, e.g. MIN, MIN5, DAY (any case); bars only.")
@click.option("--start", default=None, help="First date or datetime, inclusive (2026-11-20, '2026-11-20 10:00').")
@click.option("--end", default=None, help="Last date or datetime, inclusive; a date is the whole day.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default=None,
    help="Output format (default: from the --out suffix, else parquet).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="File to write (~ expanded).")
def export(
    store_dir: str | None,
    symbols: tuple[str, ...],
    kind: str,
    ktype: str,
    start: str | None,
    end: str | None,
    fmt: str | None,
    out: Path,
) -> None:
    """Export stored bars as one long table: symbol, datetime, open, high, low, close,
    volume (shares), amount (yuan), sorted by symbol and datetime.  ``--kind spots``: the spots the
    PostgreSQL recorder kept (prices yuan, volume and book sizes shares, amount yuan)."""
    # Parquet (pyarrow) and the store load here, not at import: `hkrt --help` stays quick
    from hkrt.store import KDataStore, _is_database_url, default_store_root, user_path

    try:
        kt = KType.parse(ktype)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--ktype") from err
    out = user_path(out)
    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "parquet")
    if kind == "spots":
        _export_spots(store_dir, list(symbols) or None, start, end, out, fmt)
        return
    if store_dir is not None and _is_database_url(store_dir):
        frame = _load_from_database(store_dir, list(symbols) or None, kt, start, end)
    else:
        # "--store=~/x" reaches us unexpanded (the shell expands only a leading ~ of a word)
        root = user_path(store_dir) if store_dir is not None else default_store_root()
        if not root.is_dir():
            raise click.BadParameter(f"no K-data store at {root}", param_hint="--store")
        store = KDataStore(root)
        try:
            frame = store.load(list(symbols) or None, kt, start, end)
        except ValueError as err:
            raise click.UsageError(str(err)) from err
        _warn_unreadable(store.stats)
    _write(frame, out, fmt)
    times = frame["datetime"]
    span = f"{times.min():%Y-%m-%d %H:%M} .. {times.max():%Y-%m-%d %H:%M}" if len(frame) else "-"
    click.echo(f"{len(frame):,} {kt.value} bars of {frame['symbol'].nunique()} symbols ({span}) -> {out} [{fmt}]")


def _export_spots(
    store_dir: str | None, symbols: list[str] | None, start: str | None, end: str | None, out: Path, fmt: str
) -> None:
    from hkrt.store import _is_database_url

    if store_dir is None or not _is_database_url(store_dir):
        raise click.BadParameter(
            "spots are recorded only in PostgreSQL: give the recorder's database as --store postgresql://…",
            param_hint="--store",
        )
    frame = _read_database(store_dir, lambda: _spot_store(store_dir), lambda s: s.load_spots(symbols, start, end))
    _write(frame, out, fmt)
    times = frame["datetime"]
    span = f"{times.min():%Y-%m-%d %H:%M:%S} .. {times.max():%Y-%m-%d %H:%M:%S}" if len(frame) else "-"
    click.echo(f"{len(frame):,} spots of {frame['symbol'].nunique()} symbols ({span}) -> {out} [{fmt}]")


def _load_from_database(
    url: str, symbols: list[str] | None, kt: KType, start: str | None, end: str | None
) -> pd.DataFrame:
    """Bars the PostgreSQL recorder wrote; an unreachable database is one error line naming it (no password)."""
    return _read_database(url, lambda: _bar_store(url), lambda s: s.load(symbols, kt, start, end))


def _bar_store(url: str) -> Any:
    from hkrt.pgstore.reader import PgBarStore

    return PgBarStore(url)


def _spot_store(url: str) -> Any:
    from hkrt.pgstore.spot_reader import PgSpotStore

    return PgSpotStore(url)


def _read_database(url: str, open_store: Callable[[], Any], read: Callable[[Any], pd.DataFrame]) -> pd.DataFrame:
    """``read(store)`` of the store ``open_store()`` makes, closed afterwards; psycopg missing, an unreachable
    database or a bad argument is one error line (the URL without its password), no traceback."""
    try:
        store = open_store()
        try:
            return read(store)
        finally:
            store.close()
    except ImportError as err:
        raise click.ClickException(str(err)) from None
    except ConnectionError as err:  # hkrt.pgstore.DatabaseUnavailable
        raise click.ClickException(str(err)) from None
    except ValueError as err:
        raise click.UsageError(str(err)) from err


def _warn_unreadable(stats: dict[str, Any]) -> None:
    if stats["unreadable"]:
        click.echo(f"Warning: skipped {stats['unreadable']} unreadable store file(s), "
                   f"last: {stats['last_unreadable']}", err=True)  # fmt: skip


def _write(frame: pd.DataFrame, out: Path, fmt: str) -> None:
    """The frame to ``out`` under a temporary name, renamed into place: a reader never sees half a file."""
    import pyarrow as pa  # type: ignore[import-untyped]  # ships no type information
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:  # an open file: pyarrow must not reinterpret the path
            if fmt == "csv":
                frame.to_csv(file, index=False, date_format="%Y-%m-%d %H:%M:%S")
            else:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                table = table.set_column(1, "datetime", table.column("datetime").cast(pa.timestamp("ms")))
                pq.write_table(table, file, compression="zstd")
        tmp.replace(out)  # a reader of --out never sees half a file
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise click.ClickException(f"cannot write {out}: {err.strerror or err}") from err
