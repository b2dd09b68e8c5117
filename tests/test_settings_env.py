"""A bad ``HKRT_*`` environment variable fails the command in one ``Error:`` line that names the variable and
what it takes, never a traceback (hkrt.core.settings_env): a table of variables, each through the real CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import hkrt
from hkrt.core.settings_env import EnvValue, SettingError, env_number, env_path, hkrt_home, prefixed, set_by

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "examples" / "ma_cross.py")
MAIL = {"HKRT_MAIL_HOST": "127.0.0.1", "HKRT_MAIL_TO": "ops@example.cn", "HKRT_MAIL_SENDER": "hkrt@example.cn"}
DINGTALK = {"HKRT_DINGTALK_ACCESS_TOKEN": "t0ken"}
TELEGRAM = {"HKRT_TELEGRAM_TOKEN": "1:abc", "HKRT_TELEGRAM_CHAT_ID": "42"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


RUN_SIM = ["run", SCRIPT, "--source", "sim", "--symbols", "10"]
# (variable, bad value, other variables, the command, what the error line says besides the variable's name)
CASES = [
    ("HKRT_MAIL_PORT", "abc", MAIL, ["notify-test", "mail"], "must be int, not 'abc'"),
    ("HKRT_MAIL_PORT", "abc", MAIL, [*RUN_SIM, "--broker", "mail"], "must be int, not 'abc'"),
    ("HKRT_MAIL_TIMEOUT", "-1", MAIL, ["notify-test", "mail"], "timeout must be > 0"),
    ("HKRT_MAIL_SECURITY", "bogus", MAIL, ["notify-test", "mail"], "security must be"),
    ("HKRT_MAIL_PORTT", "25", MAIL, ["notify-test", "mail"], "unknown setting"),
    ("HKRT_DINGTALK_TIMEOUT", "soon", DINGTALK, ["notify-test", "dingtalk"], "must be float, not 'soon'"),
    ("HKRT_TELEGRAM_MARKDOWN", "maybe", TELEGRAM, ["notify-test", "telegram"], "must be bool, not 'maybe'"),
    ("HKRT_PAPER_CASH", "lots", {}, [*RUN_SIM, "--broker", "paper"], "must be float, not 'lots'"),
    (
        "HKRT_REMOTE_SEND_TIMEOUT",
        "soon",
        {"HKRT_REMOTE_ADDRESS": "ipc:///tmp/hkrt-none.ipc"},
        [*RUN_SIM, "--broker", "remote"],
        "must be a number, not 'soon'",
    ),
    ("HKRT_HOLIDAYS_FILE", "/nonexistent/holidays.txt", {}, ["spot-server", "--source", "sim"], "cannot read"),
    ("HKRT_FEED_KEY", "zz", {}, ["spot-server", "--tcp", "0.0.0.0:{port}"], "must be hex"),
    ("HKRT_FEED_KEY_FILE", "/nonexistent/feed.key", {}, ["spot-server", "--tcp", "0.0.0.0:{port}"], "cannot read"),
    ("HKRT_TRADER_KEY", "zz", {}, ["trader", "--broker", "test", "--address", "tcp://127.0.0.1:{port}"], "must be hex"),
    ("HKRT_METRICS_TOKEN_FILE", "/nonexistent/token", {}, ["agent", "--metrics", "0.0.0.0:{port}"], "cannot read"),
]


@pytest.mark.parametrize(("variable", "value", "others", "command", "says"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_variable_is_one_error_line_naming_it(
    variable: str, value: str, others: dict[str, str], command: list[str], says: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HKRT_")}
    env.update(others, HOME=str(tmp_path), PYTHONPATH=str(Path(hkrt.__file__).resolve().parents[1]))
    env[variable] = value
    port = free_port()
    args = [a.format(port=port) for a in command]
    result = subprocess.run([sys.executable, "-m", "hkrt", *args], capture_output=True, text=True, timeout=120,
                            env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode in (1, 2), output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert variable in errors[0] and says in errors[0], errors[0]


def test_env_value_names_its_variable_through_a_check() -> None:
    values = prefixed("HKRT_MAIL_", {"HKRT_MAIL_PORT": "abc", "HKRT_MAILX": "1", "HKRT_MAIL_": "x"})
    assert values == {"port": "abc"} and isinstance(values["port"], EnvValue)
    assert values["port"].variable == "HKRT_MAIL_PORT"
    assert set_by("port must be at most 65535", values) == " (set by HKRT_MAIL_PORT)"
    assert set_by("port must be at most 65535", {"port": "abc"}) == ""  # from a file: the key says it
    assert set_by("transport is down", values) == ""


def test_single_variables_read_empty_as_unset_and_refuse_a_bad_kind(tmp_path: Path) -> None:
    assert env_number("HKRT_X", environ={"HKRT_X": " "}) is None
    assert env_number("HKRT_X", float, environ={"HKRT_X": "2.5"}) == 2.5
    with pytest.raises(SettingError, match=r"^HKRT_X='abc': expected an integer$"):
        env_number("HKRT_X", environ={"HKRT_X": "abc"})
    with pytest.raises(SettingError, match="expected at least 1"):
        env_number("HKRT_X", minimum=1, environ={"HKRT_X": "0"})
    assert env_path("HKRT_Y", {"HKRT_Y": "~/a"}) == Path.home() / "a"
    assert hkrt_home({"HKRT_HOME": str(tmp_path)}) == tmp_path
    assert hkrt_home({}) == Path.home() / ".hkrt"
