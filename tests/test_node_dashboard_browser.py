"""A node's dashboard in a real browser: ``hkrt node --dashboard`` with the sim feed and two strategies (real child
processes), driven by Selenium in Debian's headless chromium (docs/dashboard.md, "A node's dashboard").

Both strategies appear in the selector; each one's bars appear and update on its page; the order each strategy
placed appears under it (and not under the other); the halt button halts the strategy shown, and only it (its
status.json and ``hkrt status`` say HALTED, the other stays ACTIVE).  The screenshot goes to
``$HKRT_ARTIFACTS`` (CI sets it) or else the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headless_chromium import require

require()

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = {"alpha": "SH600000", "beta": "SH600001"}  # what tests/node_dashboard_strategy.py follows under each name
WAIT = 30.0


def wait_for(condition: Callable[[], Any], what: str, node: subprocess.Popen[str], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if node.poll() is not None:
            raise AssertionError(f"the node ended (status {node.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_of(run_dir: Path, name: str) -> str:
    try:
        return str(json.loads((run_dir / "state" / name / "control" / "status.json").read_text())["state"])
    except (OSError, ValueError, KeyError):
        return ""


def test_a_nodes_dashboard_shows_each_strategy_and_halts_only_the_one_shown(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name in SYMBOL:
        shutil.copy(ROOT / "tests" / "node_dashboard_strategy.py", tmp_path / f"{name}.py")
    run_dir, port = tmp_path / "node", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HKRT_DASHBOARD_TOKEN")}
    argv = [sys.executable, "-m", "hkrt", "node", "--run-dir", str(run_dir), "--address",
            f"ipc://{tmp_path / 'spot.ipc'}", "--symbols", "5", "--date", "2026-11-20", "--speed", "240",
            "--broker", "paper", "--strategy", str(tmp_path / "alpha.py"), "--strategy", str(tmp_path / "beta.py"),
            "--dashboard", f"127.0.0.1:{port}"]  # fmt: skip
    said = tmp_path / "node.out"  # a file, not a pipe: nobody reads a pipe while the test drives the browser
    with said.open("w", encoding="utf-8") as sink:
        node = subprocess.Popen(argv, cwd=ROOT, env=env, text=True, stdout=sink, stderr=subprocess.STDOUT)
    text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731
    try:
        url = f"http://127.0.0.1:{port}/"

        def page_up() -> bool:
            try:
                browser.get(url)
            except Exception:  # the server is not listening yet
                return False
            return bool(browser.find_elements(By.ID, "connection"))

        wait_for(lambda: (run_dir / "dashboard.heartbeat.json").exists(), "the dashboard child", node)
        wait_for(page_up, "the page", node)
        wait_for(lambda: text("connection") == "live", "the WebSocket to connect", node)
        selector = lambda: Select(browser.find_element(By.ID, "strategy-select"))  # noqa: E731
        names = lambda: [o.get_attribute("value") for o in selector().options]  # noqa: E731
        wait_for(lambda: names() == ["alpha", "beta"], "both strategies in the selector", node)
        shows_its_own_bars_and_order(browser, "alpha", node)
        selector().select_by_value("beta")  # loads beta's page
        wait_for(lambda: "strategy=beta" in browser.current_url and text("connection") == "live", "beta's page", node)
        shows_its_own_bars_and_order(browser, "beta", node)
        wait_for(lambda: "strategy-alpha" in text("node-processes") and "running" in text("node-processes"),
                 "the node panel", node)  # fmt: skip
        token = (run_dir / "dashboard.token").read_text().strip()
        assert token not in node_output_so_far(run_dir) + said.read_text()  # in its file, in no log nor output
        browser.find_element(By.ID, "halt").click()
        wait_for(lambda: text("halt-result").startswith("refused"), "the halt without a token refused", node)
        assert status_of(run_dir, "beta") == "ACTIVE"
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "halt").click()
        wait_for(lambda: text("halt-result").startswith("HALTED"), "the halt's answer", node)
        wait_for(lambda: status_of(run_dir, "beta") == "HALTED", "beta's status.json to say HALTED", node)
        wait_for(lambda: text("risk-state") == "HALTED", "the page to show HALTED", node)
        cancelled = "#orders tr[data-status='cancelled']"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, cancelled), "beta's order cancelled by the halt", node)
        assert status_of(run_dir, "alpha") == "ACTIVE"  # the other strategy trades on
        from click.testing import CliRunner

        from hkrt.cli import main

        shown = CliRunner().invoke(main, ["status", str(run_dir / "state" / "beta")])
        assert "HALTED" in shown.output, shown.output
        out = Path(os.environ.get("HKRT_ARTIFACTS") or tmp_path)
        out.mkdir(parents=True, exist_ok=True)
        shot = out / "node-dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"node dashboard screenshot: {shot}")
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert [m for m in errors if "/api/halt" not in m and "favicon" not in m] == []
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM if os.name != "nt" else signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    output = said.read_text()
    assert node.returncode in (0, 143), output
    assert "dashboard stopped" in output


def shows_its_own_bars_and_order(browser: Any, name: str, node: subprocess.Popen[str]) -> None:
    """The page shows strategy ``name``: its symbol's bars arriving and updating, and its working order alone."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731
    shown = "return window.hkrtDashboard.node.on && window.hkrtDashboard.strategy()"
    wait_for(lambda: browser.execute_script(shown) == name, f"{name} chosen in the selector", node)
    wait_for(lambda: text("strategy") == name, f"{name}'s snapshot", node)
    assert Select(browser.find_element(By.ID, "symbol")).first_selected_option.text == SYMBOL[name]
    first = int(wait_for(lambda: int(text("bar-count")) >= 2 and text("bar-count"), f"{name}'s bars", node))
    last = text("last-bar")
    wait_for(lambda: int(text("bar-count")) > first and text("last-bar") != last, f"{name}'s bars update", node)
    working = "#orders tr[data-status='accepted'], #orders tr[data-status='submitted']"  # its limit buy
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, working), f"{name}'s order", node)
    # read in one go in the page: its tables are redrawn four times a second
    symbols = set(browser.execute_script("return [...document.querySelectorAll('#orders tr')].map((r) => "
                                         "r.children[1].textContent)"))  # fmt: skip
    assert symbols == {SYMBOL[name]}, symbols  # its own order, not the other's


def node_output_so_far(run_dir: Path) -> str:
    """Every log the node's children wrote so far."""
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in (run_dir / "logs").glob("*.log"))
