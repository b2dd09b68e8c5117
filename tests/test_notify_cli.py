"""Alert settings from a TOML file, ``hkrt notify-test`` and ``hkrt run --alerts`` against local API servers."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hkrt.cli import main
from hkrt.notify import NotifyConfigError, read_alert_settings, router_from_config
from notify_servers import DingTalkServer, WeComServer, serving

ROOT = Path(__file__).resolve().parents[1]
TOKEN, SECRET = "cli-token-123", "SECcli-secret-456"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def ding_file(tmp_path: Path, server: DingTalkServer, extra: str = "") -> Path:
    return write(
        tmp_path / "alerts.toml",
        f"""
[alerts]
min_severity = "warning"
per_kind_burst = 3
{extra}
[notify.dingtalk]
access_token = "{TOKEN}"
secret = "{SECRET}"
url = "{server.base}/robot/send"
backoff = 0.01
""",
    )


def test_notify_test_sends_one_message_and_says_so_in_one_line(tmp_path: Path) -> None:
    with serving(DingTalkServer(TOKEN, SECRET)) as server:
        result = CliRunner().invoke(main, ["notify-test", "dingtalk", "--config", str(ding_file(tmp_path, server))])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("notify-test dingtalk: delivered in ")
    (text,) = server.texts()
    assert "test alert" in text and "if you read this" in text


def test_notify_test_fails_with_one_line_and_exit_1_never_showing_the_secret(tmp_path: Path) -> None:
    with serving(DingTalkServer(TOKEN, "SECanother")) as server:  # the robot expects another secret
        result = CliRunner().invoke(main, ["notify-test", "dingtalk", "--config", str(ding_file(tmp_path, server))])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "310000" in result.output and "sign" in result.output
    assert SECRET not in result.output and TOKEN not in result.output


def test_notify_test_names_a_missing_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["notify-test", "feishu"], env={"HKRT_FEISHU_SECRET": "s"})
    assert result.exit_code == 1 and "HKRT_FEISHU_HOOK" in result.output and result.output.count("\n") == 1


def test_the_file_and_environment_make_the_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(WeComServer("from-env")) as server:
        file = write(
            tmp_path / "a.toml",
            f"""
[alerts]
notifiers = ["ops"]
per_kind_per_minute = 30
[notify.ops]
type = "wecom"
key = "from-file"
url = "{server.base}/cgi-bin/webhook/send"
kinds = ["risk_state"]
""",
        )
        monkeypatch.setenv("HKRT_OPS_KEY", "from-env")  # the environment wins
        router = router_from_config(file)
        assert [o.name for o in router.outboxes] == ["ops"] and router.per_kind_per_minute == 30
        assert router.outboxes[0].notifier.config.kinds == ("risk_state",)
        with router:
            assert router.alert("risk_state", "critical", "trading HALTED")
            router.alert("feed_gap", "warning", "not for ops")
            assert router.wait_idle(10)
        assert router.stats["routed"] == 2 and router.stats["no_notifier"] == 1
        assert len(server.messages) == 1 and "HALTED" in server.texts()[0]


def test_bad_alert_settings_are_one_line_naming_them(tmp_path: Path) -> None:
    with pytest.raises(NotifyConfigError, match=r"unknown \[alerts\] setting loudness"):
        read_alert_settings(write(tmp_path / "a.toml", "[alerts]\nloudness = 11\n"))
    with pytest.raises(NotifyConfigError, match="no notifier"):
        router_from_config(write(tmp_path / "b.toml", "[alerts]\nmin_severity = 'info'\n"))
    with pytest.raises(NotifyConfigError, match=r"\[alerts\]: severity 'loud'"):
        router_from_config(write(tmp_path / "c.toml", "[alerts]\nmin_severity = 'loud'\n[notify.wecom]\nkey = 'k'\n"))


def test_a_secret_readable_by_others_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if os.name != "posix":
        pytest.skip("POSIX file modes")
    file = write(tmp_path / "a.toml", "[notify.wecom]\nkey = 'k'\n[notify.dingtalk]\nsecret = 's'\n", mode=0o644)
    with caplog.at_level(logging.WARNING, logger="hkrt.config"):
        read_alert_settings(file)
    assert any("notify.dingtalk.secret" in r.getMessage() and "chmod 600" in r.getMessage() for r in caplog.records)


SCRIPT = """
from hkrt import Strategy

strategy = Strategy(["SH600000", "SH600001"], name="halter")


@strategy.run_daily_at(time="10:00")
def stop_it() -> None:
    strategy.halt("test halt from the script")
"""


def test_hkrt_run_with_alerts_delivers_the_halt(tmp_path: Path) -> None:
    script = tmp_path / "halter.py"
    script.write_text(SCRIPT, encoding="utf-8")
    with serving(DingTalkServer(TOKEN, SECRET)) as server:
        config = ding_file(tmp_path, server)
        run = subprocess.run(
            [sys.executable, "-m", "hkrt", "run", str(script), "--source", "sim", "--date", "2026-11-20",
             "--symbols", "20", "--speed", "20000", "--until", "10:30", "--alerts", str(config)],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ},
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "alerts: dingtalk (minimum warning)" in run.stdout and "alerts dingtalk: 1 sent" in run.stdout
    (text,) = server.texts()
    assert "trading HALTED" in text and "test halt from the script" in text and "halter" in text
