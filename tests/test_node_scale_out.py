"""``hkrt node`` with issue 17's keys, on the real servers the suite starts: the sim feed through a real
redis-server (tests/redis_server.py) into the agent's consumer group, the agent's bars into a real PostgreSQL
(tests/pg_server.py); the day's MIN bars read back with ``load_kdata(store=URL)`` equal one process's.  A
password in the database URL never reaches a command line or a log: it goes as PGPASSWORD."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from redis_server import running_redis
from test_node import DAY, node_process, read_json, reference_bars


def test_a_node_feeds_redis_and_stores_to_postgresql(tmp_path: Path, pg_url: str) -> None:
    from hkrt.store import load_kdata

    with running_redis() as redis:
        proc = node_process(tmp_path, "--speed", "2000", "--redis", redis.url, "--group", "desk", "--store", pg_url)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
        with redis.client() as client:
            groups = {g["name"].decode(): g for g in client.xinfo_groups("hkrt:spots")}
            assert groups["desk"]["pending"] == 0  # every message taken and acknowledged
    run_dir = tmp_path / "node"
    assert read_json(run_dir / "node.json")["outcome"] == "completed"
    server_log = (run_dir / "logs" / "spot-server.log").read_text(encoding="utf-8")
    assert f"--redis {redis.url}" in server_log and "--wait-subscribers" not in server_log  # no nng subscriber
    agent_log = (run_dir / "logs" / "agent.log").read_text(encoding="utf-8")
    assert f"agent: subscribing to {redis.url} stream hkrt:spots group desk" in agent_log
    assert f"market day {DAY} closed" in agent_log
    stored = load_kdata(None, "MIN", store=pg_url)
    reference = reference_bars(tmp_path)
    assert len(stored) == len(reference) == 240 * reference["symbol"].nunique() > 0
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), reference.reset_index(drop=True))
    assert not (run_dir / "store").exists()  # the bars went to the database only


def test_the_passwords_go_to_the_children_in_their_environment_never_on_a_command_line(tmp_path: Path) -> None:
    from hkrt.node.config import node_config
    from hkrt.node.plan import node_specs
    from hkrt.node.process import Launch
    from hkrt.node.scale_out import describe

    url = "postgresql://rec:S3cret%40pw@db.example:5433/bars?sslmode=require"
    config = node_config({"run-dir": str(tmp_path), "store": url, "redis": "redis://:R3dis-pw@cache:6379/0"})
    server, agent = (s for s in node_specs(config) if s.name in ("spot-server", "agent"))
    argv = agent.command(Launch(0, 0, 0))
    assert argv[argv.index("--store") + 1] == "postgresql://rec@db.example:5433/bars?sslmode=require"
    assert agent.env == {"PGPASSWORD": "S3cret@pw", "HKRT_REDIS_PASSWORD": "R3dis-pw"}
    assert argv[argv.index("--group") + 1] == "hkrt-node" and "--retransmit-from" in argv
    assert argv[argv.index("--redis") + 1] == "redis://cache:6379/0"
    published = server.command(Launch(0, 0, 0))
    assert published[published.index("--redis") + 1] == "redis://cache:6379/0"
    assert server.env == {"HKRT_REDIS_PASSWORD": "R3dis-pw"}
    assert not any("S3cret" in a or "R3dis" in a for a in argv + published)
    from hkrt.node.scale_out import without_password

    assert without_password("unix://:pw@/run/r.sock?db=2") == ("unix:///run/r.sock?db=2", "pw")
    assert without_password("unix:///run/r.sock") == ("unix:///run/r.sock", None)
    shown = describe(config)
    assert "S3cret" not in shown and "R3dis" not in shown and "rec:***@db.example" in shown


def test_through_redis_the_sim_feed_waits_for_the_strategies_alone(tmp_path: Path) -> None:
    from hkrt.node.config import node_config
    from hkrt.node.plan import node_specs
    from hkrt.node.process import Launch

    script = Path(__file__).resolve().parents[1] / "examples" / "macd_cross.py"
    config = node_config({"run-dir": str(tmp_path), "redis": "unix:///tmp/r.sock", "strategy": [str(script)]})
    server, agent, strategy = (s.command(Launch(0, 0, 0)) for s in node_specs(config))
    assert server[-2:] == ["--wait-subscribers", "1"] and server[server.index("--redis") + 1] == "unix:///tmp/r.sock"
    assert "--address" not in agent and agent[agent.index("--redis") + 1] == "unix:///tmp/r.sock"
    assert "--redis" not in strategy and "--address" in strategy  # a strategy still subscribes over nng


def test_redis_urls_are_masked_in_a_childs_log(tmp_path: Path) -> None:
    from hkrt.node.child_log import shown_command

    line = shown_command(["hkrt", "spot-server", "--redis", "redis://u:R3dis-pw@h:1/0", "rediss://h?password=pw2&db=1"])
    assert "R3dis" not in line and "pw2" not in line and "redis://u:***@h:1/0" in line


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"group": "desk"}, "group: needs redis"),
        ({"redis": "ftp://:S3cret@host"}, "redis: invalid Redis URL"),
        ({"store": "mysql://u:S3cret@host/db"}, "neither a directory nor a postgresql:// URL"),
        ({"metrics": "0.0.0.0:9300"}, "metrics: metrics on 0.0.0.0:9300 would be reachable"),
        ({"alerts": "no/such.toml"}, "alerts: no file no/such.toml"),
    ],
)
def test_a_bad_ops_setting_is_one_line_without_the_password(
    tmp_path: Path, settings: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hkrt.node.config import NodeConfigError, node_config

    monkeypatch.delenv("HKRT_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("HKRT_METRICS_TOKEN_FILE", raising=False)
    with pytest.raises(NodeConfigError) as caught:
        node_config({"run-dir": str(tmp_path), **settings})
    assert message in str(caught.value) and "S3cret" not in str(caught.value)


def test_metrics_given_bare_or_true_listens_on_the_default(tmp_path: Path) -> None:
    from hkrt.node.config import DEFAULT_METRICS, node_config

    assert node_config({"run-dir": str(tmp_path), "metrics": True}).metrics == DEFAULT_METRICS
    assert node_config({"run-dir": str(tmp_path), "metrics": False}).metrics is None
    from hkrt.cli.node import node

    bare = node.make_context("node", ["--metrics", "--speed", "10"]).params
    assert bare["metrics"] == DEFAULT_METRICS and bare["speed"] == 10
    assert node.make_context("node", ["--metrics", "127.0.0.1:0"]).params["metrics"] == "127.0.0.1:0"
    assert node.make_context("node", []).params["metrics"] is None
