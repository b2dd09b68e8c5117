"""Debian's Prometheus scrapes ``/metrics`` with a bearer token (docs/metrics.md): the target is up, the values
arrive, and a job with a wrong token is refused (401).  Needs the ``prometheus`` binary: on the PATH or named
by ``$HKRT_PROMETHEUS`` (.ci/run unpacks it from Debian's package); skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hkrt.ops import serve_metrics
from hkrt.ops.restarts import restarts

TOKEN = "prometheus-test-token-0123456789"
BINARY = os.environ.get("HKRT_PROMETHEUS") or shutil.which("prometheus")

pytestmark = pytest.mark.skipif(
    not BINARY or not Path(BINARY).is_file(),
    reason="no prometheus binary: apt-get install prometheus, or set HKRT_PROMETHEUS (see .ci/run)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, path: str, **query: str) -> Any:
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["data"]


def test_prometheus_scrapes_the_endpoint_with_its_token(tmp_path: Path) -> None:
    from hkrt.agent.spot_agent import SpotAgent

    restarts.inc(process="prometheus-test", by=3)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    wrong_file = tmp_path / "wrong"
    wrong_file.write_text("not-the-token-at-all-0123")
    with serve_metrics("127.0.0.1:0", agent=SpotAgent(["MIN"]), token=TOKEN) as server:
        target = f"127.0.0.1:{server.bind.port}"
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n"
            f"  - job_name: hkrt\n    authorization: {{credentials_file: {token_file}}}\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
            f"  - job_name: wrong\n    authorization: {{credentials_file: {wrong_file}}}\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        assert BINARY is not None
        prometheus = subprocess.Popen(
            [BINARY, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            health: dict[str, Any] = {}
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    targets = api(base, "targets")["activeTargets"]
                    health = {t["labels"]["job"]: t for t in targets}
                    if len(health) == 2 and (health["hkrt"]["health"], health["wrong"]["health"]) == ("up", "down"):
                        break
                except OSError:
                    pass  # not listening yet
                time.sleep(0.2)
            assert health.get("hkrt", {}).get("health") == "up", health
            assert health["wrong"]["health"] == "down" and "401" in health["wrong"]["lastError"]
            result = api(base, "query", query='hkrt_process_restarts_total{job="hkrt",process="prometheus-test"}')
            assert [float(r["value"][1]) for r in result["result"]] == [restarts.count("prometheus-test")]
            result = api(base, "query", query='hkrt_feed_messages_total{job="hkrt"}')
            assert [float(r["value"][1]) for r in result["result"]] == [0.0]
        finally:
            prometheus.terminate()
            prometheus.communicate(timeout=15)
    assert server.stats["unauthorized"] >= 1  # the wrong job's scrapes
