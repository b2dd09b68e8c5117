"""Redis over TLS (``rediss://``): a simulated day from ``hkrt spot-server --redis`` to ``hkrt agent --redis
--group`` through a real redis-server that listens on TLS only, with a password and client certificates
(mutual TLS), its certificates made here by a private CA with the ``openssl`` command.  The CA, the client's
certificate and key travel in the URL's query (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``: redis-py's
names); a publisher that does not trust the server's certificate appends nothing and says why in one line.

Skips, naming the Debian package, where redis-server (built with TLS, as Debian's is) or openssl is missing
(``.ci/run`` installs both)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PASSWORD = "Tls-Sekr3t-pw"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, each signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=hkrt test CA", cwd=directory)  # fmt: skip
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="ascii")
    for who, extra in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                 "-subj", f"/CN=hkrt test {who}", cwd=directory)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{who}.crt", "-days", "2", *extra, cwd=directory)  # fmt: skip
    for key in directory.glob("*.key"):
        key.chmod(0o600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A redis-server on TLS only (127.0.0.1), password and client certificates required: (its URL
    without the certificate settings, the certificates' directory)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'hkrt[redis]')")
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certificates(certs)
    port = free_port()
    log = tmp_path / "redis.log"
    process = subprocess.Popen(
        [binary, "--port", "0", "--bind", "127.0.0.1", "--tls-port", str(port),
         "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
         "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "yes", "--requirepass", PASSWORD,
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path), "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while "Ready to accept connections" not in (log.read_text(errors="replace") if log.exists() else ""):
            if process.poll() is not None:
                text = log.read_text(errors="replace") if log.exists() else ""
                if "TLS" in text and "not" in text and "support" in text:
                    pytest.skip("this redis-server was built without TLS")
                raise AssertionError(f"redis-server did not start: {text[-2000:]}")
            assert time.monotonic() < deadline, "redis-server did not start within 15 s"
            time.sleep(0.02)
        yield f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", certs
    finally:
        process.kill()
        process.wait(10)


def with_certificates(url: str, certs: Path, *, client: bool = True, ca: bool = True) -> str:
    query = []
    if ca:
        query.append(f"ssl_ca_certs={certs / 'ca.crt'}")
    if client:
        query += [f"ssl_certfile={certs / 'client.crt'}", f"ssl_keyfile={certs / 'client.key'}"]
    return url + ("?" + "&".join(query) if query else "")


def hkrt(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen[str]:
    env = {k: v for k, v in (env or os.environ).items() if k not in ("COLUMNS", "LINES")}
    return subprocess.Popen([sys.executable, "-m", "hkrt", *args], text=True, env=env, **popen)


def spot_server(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hkrt", "spot-server", "--source", "sim", "--symbols", "3", "--date", "2026-11-20",
         "--speed", "100000", "--interval", "30", "--address", f"ipc://{tmp_path / 'feed.ipc'}",
         "--redis", url, "--stream", "day", "--maxlen", "5000", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_sim_day_crosses_a_tls_redis_with_client_certificates(tls_redis: tuple[str, Path], tmp_path: Path) -> None:
    import redis

    bare, certs = tls_redis
    url = with_certificates(bare, certs)
    # the agent's URL carries no password: it comes from $HKRT_REDIS_PASSWORD (not in the process list)
    no_password = with_certificates(bare.replace(f":{PASSWORD}@", ""), certs)
    assert PASSWORD not in no_password
    agent = hkrt("agent", "--redis", no_password, "--group", "desk", "--consumer", "host-b", "--stream", "day",
                 "--seconds", "15", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 env={**os.environ, "HKRT_REDIS_PASSWORD": PASSWORD})  # fmt: skip
    with redis.Redis.from_url(url) as client:  # the agent has joined over TLS: its group exists
        deadline = time.monotonic() + 30
        while not (client.exists("day") and client.xinfo_groups("day")):
            assert time.monotonic() < deadline and agent.poll() is None, "the agent did not join"
            time.sleep(0.05)
    done = spot_server(tmp_path, url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ", 0 dropped, 0 errors" in done.stdout, done.stdout
    out, err = agent.communicate(timeout=60)
    with redis.Redis.from_url(url) as client:
        pending = client.xpending("day", "desk")["pending"]
        entries = client.xlen("day")
    assert agent.returncode == 0, out + err
    assert "market day 2026-11-20 closed" in out and "2026-11-20 15:00 SH600000 MIN" in out, out
    assert pending == 0 and entries > 500  # every cycle of the day (one message each), all acknowledged
    assert "Traceback" not in out + err + done.stdout + done.stderr
    assert PASSWORD not in out + err + done.stdout + done.stderr  # shown as ***


def test_a_server_certificate_not_trusted_or_no_client_certificate_appends_nothing_and_says_so(
    tls_redis: tuple[str, Path], tmp_path: Path
) -> None:
    import redis

    bare, certs = tls_redis
    for url, why in (
        (with_certificates(bare, certs, ca=False), "CERTIFICATE_VERIFY_FAILED"),  # the server's CA not trusted
        (with_certificates(bare, certs, client=False), "EOF occurred in violation of protocol"),  # no client cert
    ):
        done = spot_server(tmp_path, url)
        text = done.stdout + done.stderr
        assert "Traceback" not in text and PASSWORD not in text
        assert "WARNING hkrt.redis: cannot append to the Redis stream: retrying with backoff" in done.stderr
        assert why in done.stderr, done.stderr
        # every message counted as not appended, said at the end (the nng feed itself served the day)
        assert "redis: 0 messages appended, 513 dropped" in done.stdout, done.stdout[-500:]
    with redis.Redis.from_url(with_certificates(bare, certs)) as client:
        assert client.xlen("day") == 0  # nothing reached the stream
