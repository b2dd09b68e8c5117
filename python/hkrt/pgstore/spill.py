"""The recorder's spill directory: queued bars on disk while the database cannot take them.

Layout (the Parquet writer's, for the same reasons)::

    spill_dir/spill-<seq>-<pid>-<rows>.npy        bars waiting, oldest first by <seq>
    spill_dir/.tmp-<...>                          being written (never read; removed at the next start)
    spill_dir/_quarantine/<name>.unreadable       a spill file that could not be read: kept, never deleted
    spill_dir/_refused/refused-<ns>-<rows>.npy    bars the database refused: kept for an operator
    spill_dir/.writer.lock                        one recorder per spill directory

Each file is written under a temporary name, fsynced and renamed, so a crash leaves whole files only.  A file
is deleted only after its rows were committed to the database.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from hkrt.feed.journal import fsync_directory
from hkrt.store import (
    _RECORD_FIELDS,
    QUARANTINE_DIR,
    _spill_rows,
    _spill_seq,
    lock_writer_file,
    save_records,
    user_path,
)

REFUSED_DIR = "_refused"


class SpillDir:
    """Spill files of records, in order: completed bars (``COMPLETED_DTYPE``) unless ``fields`` names the fields
    another kind's records must have (spots: ``hkrt.pgstore.spot_records.REQUIRED_FIELDS``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        fields: tuple[str, ...] = (),
        kind: str = "completed-bar",
    ) -> None:
        self.path = user_path(path)
        self.fsync = fsync
        self.fields = fields or _RECORD_FIELDS
        self.kind = kind
        self._next = 0
        self._lock_fd = -1

    def lock(self) -> None:
        """Take the one-recorder lock (raises OSError EBUSY when another process holds it)."""
        if self._lock_fd >= 0:
            return
        self._lock_fd, _how = lock_writer_file(self.path, f"the recorder spill directory {self.path}")
        for stale in self.path.glob(".tmp-*"):  # a crash mid-write left it; it was never a spill file
            stale.unlink(missing_ok=True)

    def unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def files(self) -> list[Path]:
        """Spill files, oldest first."""
        try:
            found = [p for p in self.path.iterdir() if p.name.startswith("spill-") and p.name.endswith(".npy")]
        except FileNotFoundError:
            return []
        found.sort(key=lambda p: (_spill_seq(p), p.name))
        if found:
            self._next = max(self._next, _spill_seq(found[-1]) + 1)
        return found

    @staticmethod
    def rows(path: Path) -> int:
        return _spill_rows(path)

    def write(self, records: np.ndarray) -> Path:
        """A new spill file, newer than every other; raises OSError (nothing left behind)."""
        self.files()  # the sequence continues after what is on disk
        name = f"spill-{self._next:012d}-{os.getpid()}-{len(records)}.npy"
        path = self._write_atomic(self.path, name, records)
        self._next += 1
        return path

    def refuse(self, records: np.ndarray) -> Path:
        """Keep rows the database refused, for an operator (never read back by the recorder)."""
        name = f"refused-{time.time_ns():020d}-{len(records)}.npy"
        return self._write_atomic(self.path / REFUSED_DIR, name, records)

    def read(self, path: Path) -> np.ndarray:
        """A spill file's records; raises OSError, ValueError or EOFError when it cannot be read."""
        records: np.ndarray = np.load(path, allow_pickle=False)
        if records.ndim != 1 or not set(self.fields) <= set(records.dtype.names or ()):
            raise ValueError(f"not {self.kind} records: {records.dtype}")
        return records

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._sync(self.path)

    def quarantine(self, path: Path) -> Path:
        """Move an unreadable spill file aside, never deleting it; returns where it is now (its old place when
        it cannot be moved: the next round tries again)."""
        target = self.path / QUARANTINE_DIR / f"{path.name}.unreadable"
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
        self._sync(self.path)
        self._sync(target.parent)
        return target

    def _write_atomic(self, directory: Path, name: str, records: np.ndarray) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        save_records(directory / name, records, fsync=self.fsync)
        self._sync(directory)
        return directory / name

    def _sync(self, directory: Path) -> None:
        if self.fsync:
            fsync_directory(directory)
