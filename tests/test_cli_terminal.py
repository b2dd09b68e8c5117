"""The CLI on a real terminal (a pty of 80 or 40 columns): status lines redrawn in place, never wider than the
terminal, so they do not scroll; ``hkrt --version``; shell completion (click's, documented in docs/cli.md); no
deprecated click API (a run with DeprecationWarning as an error is clean)."""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hkrt
from hkrt.cli.status_line import StatusLine, columns, cut, fit

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(hkrt.__file__).resolve().parents[1]), **extra}


def run_on_terminal(
    args: list[str], columns_: int, tmp: Path, *, until: str | None = None, timeout: float = 120
) -> tuple[int, str]:
    """Run ``python -m hkrt ARGS`` on a pty of ``columns_`` columns (COLUMNS set and the window size given by
    TIOCSWINSZ); with ``until`` (a regular expression), SIGINT once its output matched.
    Returns (status, everything it wrote)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns_, 0, 0))
    env = _env(COLUMNS=str(columns_), LINES="24", HOME=str(tmp), HKRT_HOME=str(tmp / "hkrt-home"))
    proc = subprocess.Popen([sys.executable, "-m", "hkrt", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=tmp, start_new_session=True)  # fmt: skip
    os.close(slave)
    out, signalled = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
            if until is not None and not signalled and re.search(until, out.decode(errors="replace")):
                proc.send_signal(signal.SIGINT)
                signalled = True
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, ANSI.sub("", out.decode(errors="replace"))


def redraws(text: str, first: str) -> list[str]:
    """Every status line drawn: the pieces between carriage returns and newlines that start with ``first``."""
    return [piece.rstrip() for piece in re.split(r"[\r\n]", text) if piece.startswith(first)]


posix_pty = pytest.mark.skipif(sys.platform == "win32", reason="a pty (Windows has no os.openpty)")


@posix_pty
@pytest.mark.parametrize("width", [80, 40])
def test_demo_status_line_fits_the_terminal_and_is_redrawn_in_place(tmp_path: Path, width: int) -> None:
    status, text = run_on_terminal(["demo", "--days", "1", "--symbols", "20", "--speed", "6000"], width, tmp_path)
    assert status == 0, text
    drawn = redraws(text, "market ")
    assert len(drawn) >= 5, text  # redrawn a few times a second over the run
    assert max(columns(line) for line in drawn) < width, [line for line in drawn if columns(line) >= width]
    # in place: between the first redraw and the summary, only the final newline and any warning logs
    run = text[text.index("\rmarket ") : text.index("summary")]
    scrolled = [line for line in run.split("\n") if line.strip() and " WARNING " not in line]
    assert len(scrolled) <= 1, scrolled
    assert drawn[-1].startswith("market 15:00:00 100%")


@posix_pty
@pytest.mark.parametrize("width", [80, 40])
def test_spot_server_status_line_fits_the_terminal_and_does_not_scroll(tmp_path: Path, width: int) -> None:
    args = ["spot-server", "--source", "sim", "--symbols", "50", "--speed", "30", "--address",
            f"ipc://{tmp_path / 'feed.ipc'}"]  # fmt: skip
    # the line grows with the market time and counters; SIGINT after several redraws
    status, text = run_on_terminal(args, width, tmp_path, until=r"cycle [3-9]\d ")
    assert status == 130, text
    drawn = redraws(text, "cycle ")
    assert len(drawn) >= 5, text
    assert max(columns(line) for line in drawn) < width, drawn
    body = text[text.index("\rcycle ") : text.index("stopped")]
    assert body.count("\n") <= 1, body  # one line redrawn, ended once
    assert "Traceback" not in text


def test_off_a_terminal_the_status_is_a_plain_line_at_a_bounded_rate() -> None:
    now = [0.0]
    log = io.StringIO()
    status = StatusLine(log, every=10.0, clock=lambda: now[0])
    for step in range(100):  # 100 updates over 50 s
        now[0] = step * 0.5
        status.show(["cycle", str(step)])
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split()[1] for line in lines] == ["0", "20", "40", "60", "80"]  # one each 10 s
    assert status.show(["state", "changed"], changed=True)  # a change is news at once


def test_fit_leaves_out_whole_parts_and_cuts_a_wide_first_one() -> None:
    assert fit(["aaaa", "bbbb", "cccc"], 10) == "aaaa  bbbb"
    assert fit(["a" * 30, "b"], 10) == "aaaaaaa..."
    assert fit(["", "x"], None) == "x"
    wide = "行情" * 10  # two columns each
    assert columns(wide) == 40 and columns(cut(wide, 11)) <= 11


def test_version_names_the_package_version() -> None:
    result = subprocess.run([sys.executable, "-m", "hkrt", "--version"], capture_output=True, text=True,
                            env=_env(), timeout=60)  # fmt: skip
    assert result.returncode == 0 and hkrt.__version__ in result.stdout, result


def completion(shell_action: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The ``hkrt`` console script's completion (click's ``_HKRT_COMPLETE``), run as the script runs it."""
    code = "import sys; from hkrt.cli import main; sys.argv[0] = 'hkrt'; main()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=_env(_HKRT_COMPLETE=shell_action, **env))  # fmt: skip


@pytest.mark.parametrize(("shell", "needle"), [("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete")])
def test_completion_scripts_are_produced_for_each_shell(shell: str, needle: str) -> None:
    result = completion(f"{shell}_source")
    assert result.returncode == 0, result.stderr
    assert needle in result.stdout and "_HKRT_COMPLETE" in result.stdout


def test_completing_hkrt_ru_offers_run() -> None:
    result = completion("bash_complete", COMP_WORDS="hkrt ru", COMP_CWORD="1")
    assert result.returncode == 0, result.stderr
    assert "plain,run" in result.stdout.splitlines()
    options = completion("bash_complete", COMP_WORDS="hkrt demo --sp", COMP_CWORD="2")
    assert "plain,--speed" in options.stdout.splitlines()


def test_help_of_every_command_is_clean_under_deprecation_warnings_as_errors() -> None:
    names = ["spot-server", "agent", "run", "demo", "export", "halt", "resume", "status", "notify-test", "node",
             "trader"]  # fmt: skip
    listed = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-m", "hkrt", "--help"],
                            capture_output=True, text=True, env=_env(), timeout=60)  # fmt: skip
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert all(name in listed.stdout for name in names)
    code = (
        "import sys\nfrom hkrt.cli import main\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n        main([name, '--help'], prog_name='hkrt')\n"
        "    except SystemExit as end:\n        assert end.code == 0, (name, end.code)\n"
    )
    result = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code, *names],
                            capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
