"""Reading a TOML config file, with one line naming the file and the problem when it cannot be read."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed file (``~`` expanded); ValueError naming the file when it is missing, a directory,
    not UTF-8 or not valid TOML."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    file = Path(path).expanduser()
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {file} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"config file {file} is a directory") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"config file {file} is not UTF-8 text: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {file} is not valid TOML: {err}") from None
