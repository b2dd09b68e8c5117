"""The agent's blocking ``run()`` / ``join()`` (a script's last line, issue 16 item 7), and ``hkrt agent``'s
``--store`` / ``--journal`` / ``--heartbeat-file`` as ``hkrt node`` runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import hkrt


def test_join_waits_for_a_stop_from_another_thread(tmp_path: Path) -> None:
    agent = hkrt.SpotAgent(ktypes=["MIN"])
    agent.start(f"ipc://{tmp_path / 'nobody.ipc'}")
    try:
        assert agent.join(0.3) is False  # still running
        threading.Timer(0.2, agent.stop).start()
        started = time.monotonic()
        assert agent.join(10) is True
        assert time.monotonic() - started < 5
    finally:
        agent.stop()
    assert not agent.running
    assert agent.join(0) is True  # a stopped agent: at once


def test_run_returns_after_stop_with_no_signal(tmp_path: Path) -> None:
    agent = hkrt.SpotAgent(ktypes=["MIN"])
    threading.Timer(0.5, agent.stop).start()
    assert agent.run(f"ipc://{tmp_path / 'nobody.ipc'}", handle_signals=False) is None
    assert not agent.running


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM sent as on POSIX")
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_script_ending_in_run_blocks_until_a_signal(tmp_path: Path, sig: int, status: int) -> None:
    """The README's snippet as a script: it stays up until Ctrl-C / SIGTERM, then stops cleanly (the
    journal is closed) and exits with the conventional status."""
    script = tmp_path / "agent_script.py"
    script.write_text(
        "import sys\nimport hkrt\n"
        f"agent = hkrt.SpotAgent(journal_dir={str(tmp_path / 'journal')!r})\n"
        "print('running', flush=True)\n"
        f"signum = agent.run({'ipc://' + str(tmp_path / 'spot.ipc')!r})\n"
        "print('stopped by', signum, 'running', agent.running, flush=True)\n"
        "sys.exit(128 + signum if signum else 0)\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    time.sleep(1.5)
    assert proc.poll() is None  # it blocks: a script no longer exits at once
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert f"stopped by {int(sig)} running False" in out


def test_hkrt_agent_keeps_a_store_a_journal_and_a_heartbeat(tmp_path: Path) -> None:
    """``hkrt agent --store --journal --heartbeat-file``: the heartbeat names its pid and moves; SIGTERM
    stops it with 143 and a last beat saying it is not running; bad directories are one line."""
    beat = tmp_path / "beat.json"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    argv = [sys.executable, "-m", "hkrt", "agent", "--address", f"ipc://{tmp_path / 'spot.ipc'}", "--store",
            str(tmp_path / "store"), "--journal", str(tmp_path / "journal"), "--heartbeat-file", str(beat)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline, beats = time.monotonic() + 60, set()
    while len(beats) < 2 and time.monotonic() < deadline:
        try:
            data = json.loads(beat.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if data:
            assert data["pid"] == proc.pid and data["running"] is True and data["connected"] == 0
            beats.add(data["heartbeat"])
        time.sleep(0.2)
    assert len(beats) == 2, "the heartbeat did not move"
    assert (tmp_path / "store").is_dir() and (tmp_path / "journal").is_dir()
    if sys.platform != "win32":
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 143
        assert json.loads(beat.read_text(encoding="utf-8"))["running"] is False
    else:
        proc.kill()
        proc.communicate(timeout=30)
    (tmp_path / "afile").write_text("", encoding="utf-8")
    bad = subprocess.run([*argv[:6], "--store", str(tmp_path / "afile" / "store"), "--seconds", "1"],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "--store" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
