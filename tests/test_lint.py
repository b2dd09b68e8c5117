"""The Python code is ruff-clean and ruff-formatted (the configuration is in pyproject.toml)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff must be installed (pip install '.[test]' brings it)"
    result = subprocess.run([ruff, "check", "python", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_clean() -> None:
    """One code style, enforced: `ruff format` changes nothing (run it before committing)."""
    ruff = shutil.which("ruff")
    assert ruff, "ruff must be installed (pip install '.[test]' brings it)"
    paths = ["python", "tests", "benchmarks", "notebooks/make_notebooks.py"]
    result = subprocess.run([ruff, "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
