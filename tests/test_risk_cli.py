"""``hkrt run --risk FILE`` and a ``[risk]`` table in ``--config``: the limits reach the strategy's engine;
a bad file is one line naming the problem, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def hkrt_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hkrt", "run", "examples/daily_rebalance.py", "--source", "sim",
                           "--date", "2026-11-20", "--symbols", "50", *args],
                          capture_output=True, text=True, timeout=180, cwd=ROOT, env=dict(os.environ))  # fmt: skip


def test_a_bad_risk_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "risk.toml"
    bad.write_text("[risk]\nmax_order_shares = 100\nmax_ordr_value = 5\n", encoding="utf-8")
    out = hkrt_run("--risk", str(bad))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"Error: risk: unknown key 'max_ordr_value' in {bad} (did you mean max_order_value?)"
    )
    out = hkrt_run("--risk", str(tmp_path / "missing.toml"))
    assert out.returncode == 1 and out.stderr.strip().endswith("missing.toml does not exist")
    config = tmp_path / "brokers.toml"  # the [risk] table of --config is read too
    config.write_text("[risk]\nmax_orders_per_second = 500\n", encoding="utf-8")
    out = hkrt_run("--config", str(config))
    assert out.returncode == 1 and "max_orders_per_second 500 reaches the exchanges' high-frequency" in out.stderr


def test_the_limits_reach_the_engine(tmp_path: Path) -> None:
    good = tmp_path / "risk.toml"
    good.write_text("[risk]\nmax_order_shares = 100\n", encoding="utf-8")
    out = hkrt_run("--risk", str(good), "--out", str(tmp_path / "out"), "--speed", "8000")
    assert out.returncode == 0, out.stderr
    assert f"risk limits from {good}" in out.stdout
    orders = (tmp_path / "out" / "orders.csv").read_text(encoding="utf-8").splitlines()[1:]
    # daily_rebalance buys five symbols at 14:50, each far above 100 shares: all refused by the engine
    assert len(orders) == 5 and all("risk: buy of" in o and "above max_order_shares 100" in o for o in orders)
