"""Packages by layer, data flowing one way (docs/architecture.md, "Packages by layer"): a module
imports, at module level, only modules of its own layer or a lower one.  Imports inside functions
(loaded on first use) and under ``if TYPE_CHECKING:`` do not count: they create no import-time
dependency.  The old flat module paths are aliases of the moved modules."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "hkrt"

# lowest first; a module belongs to the first layer whose prefix it matches (longest prefix wins)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("hkrt._hkrt", "hkrt._lazy", "hkrt._moved_modules", "hkrt.core", "hkrt.compat", "hkrt._fbs")),
    ("feed", ("hkrt.feed",)),
    ("store", ("hkrt.store", "hkrt.pgstore")),
    ("bus", ("hkrt.bus", "hkrt.hooks")),
    ("indicators", ("hkrt.indicators",)),
    ("agent", ("hkrt.agent",)),
    # the trader's protocol and RemoteBroker are the strategy's side of a broker (make_broker builds them)
    ("adapters", ("hkrt.adapters", "hkrt.fetcher", "hkrt.broker", "hkrt.trader.protocol", "hkrt.trader.remote_broker")),
    # alerts: read the bus (strategy events only through it), send through the adapters' SMTP code
    ("notify", ("hkrt.notify",)),
    ("strategy", ("hkrt.strategy",)),
    ("ops", ("hkrt.ops",)),  # metrics and health: read the agent, the bus and the strategies
    (
        "apps",
        (
            "hkrt.cli",
            "hkrt.dashboard",
            "hkrt.node",
            "hkrt.trader",
            "hkrt.notebook",
            "hkrt.testing",
            "hkrt.__main__",
            "hkrt",
        ),
    ),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str:
    best, best_len = "apps", -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = name, len(prefix)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(path: Path) -> set[str]:
    """The hkrt modules a file imports when it is imported (module level, not TYPE_CHECKING)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "hkrt")
            elif isinstance(node, ast.ImportFrom) and node.module == "hkrt":  # from hkrt import _hkrt: submodules
                found.update(f"hkrt.{a.name}" for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hkrt":
                found.add(node.module)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "_fbs" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: module_name(p))
def test_a_module_imports_nothing_from_a_higher_layer(path: Path) -> None:
    me = module_name(path)
    mine = RANK[layer_of(me)]
    upward = sorted(m for m in import_time_imports(path) if RANK[layer_of(m)] > mine)
    assert not upward, f"{me} ({layer_of(me)}) imports {upward} from higher layers"


def test_the_scan_sees_an_upward_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nimport hkrt.agent\nif TYPE_CHECKING:\n    from hkrt.strategy import S\n"
        "def f():\n    from hkrt.cli import main\n"
    )
    assert import_time_imports(sample) == {"hkrt.agent"}
    assert layer_of("hkrt.core.calendar") == "core" and layer_of("hkrt.agent.spot_agent") == "agent"
    assert layer_of("hkrt") == "apps" and layer_of("hkrt.bus.events") == "bus"


def test_the_old_module_paths_are_the_moved_modules_themselves() -> None:
    from hkrt._moved_modules import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert sys.modules[old].__spec__.name == new  # the module keeps its real name
    from hkrt.calendar import TradingCalendar  # the spellings scripts and notebooks use

    assert TradingCalendar.__module__ == "hkrt.core.calendar"
