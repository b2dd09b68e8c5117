"""python/hkrt/_hkrt.pyi and KType's members block in python/hkrt/core/ktype.py are what the compiled bindings say
(tools/gen_stub.py writes both)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_checked_in_stub_is_generated_from_the_bindings() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_stub.py"), "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
