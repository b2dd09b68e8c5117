"""The typing gate: ``mypy --strict`` on the modules pyproject.toml's [tool.mypy] lists (docs/architecture.md, "Gates").

mypy reads its whole configuration (strict, the file list, the untyped third-party modules) from pyproject.toml, so
this test and a developer's plain ``python -m mypy`` at the repository root check the same thing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the project depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _mypy_config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["mypy"]


def test_the_gate_is_strict_and_names_files_that_exist():
    config = _mypy_config()
    assert config["strict"] is True
    files = config["files"]
    assert files, "[tool.mypy] files is empty: the gate would check nothing"
    missing = [f for f in files if not (ROOT / f).is_file()]
    assert not missing, f"[tool.mypy] files names modules that do not exist: {missing}"


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (pip install -e .[test] brings the pinned mypy)",
)
def test_mypy_strict_is_clean(tmp_path):
    # a fresh cache: a result never depends on a stale cache, and nothing is written into the checkout
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy_cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy --strict found problems in the gated modules:\n{output}"
    assert f"no issues found in {len(_mypy_config()['files'])} source files" in output, output


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_the_configuration_rejects_untyped_code(tmp_path):
    """The gate can fail: the same configuration, on a module with an unannotated function, exits non-zero."""
    module = tmp_path / "untyped.py"
    module.write_text("def double(x):\n    return 2 * x\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            str(module),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no-untyped-def" in result.stdout, result.stdout


def test_the_pre_commit_config_runs_the_same_gates_offline():
    """.pre-commit-config.yaml runs, before each commit, the gates these tests enforce, with the environment's own
    pinned tools (local hooks, language: system): no hook downloads anything."""
    text = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    entries = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("entry:")]
    assert entries == [
        "ruff check --force-exclude",
        "ruff format --force-exclude",
        "python -m mypy",  # reads strict and the file list from pyproject.toml, as test_mypy_strict_is_clean does
        "python tools/gen_stub.py --check",
    ]
    repos = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("- repo:")]
    assert repos == ["local"]
    languages = {line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("language:")}
    assert languages == {"system"}
