"""The node's dashboard (``dashboard = "127.0.0.1:8050"`` in node.toml, ``hkrt node --dashboard``): each strategy
child serves its dashboard stream on a relay address of its own (``hkrt run --dashboard-relay``), and one more
supervised child, ``hkrt dashboard``, follows them all and serves the page (docs/dashboard.md, "A node's
dashboard").  A child rather than the node itself: a fault of the web stack stays away from the supervisor.

The token (the halt button's, and reading's beyond loopback) is the dashboard's as everywhere:
``$HKRT_DASHBOARD_TOKEN`` or the file ``$HKRT_DASHBOARD_TOKEN_FILE`` in the node's environment (the child
inherits them), else the node key ``dashboard-token-file``; on loopback without any, the node keeps a random one
in ``RUN_DIR/dashboard.token`` (owner-only, made once).  It reaches the child through the environment as a file
name, never on a command line, and is never printed nor logged.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from hkrt.node.config import NodeConfig, NodeConfigError, StrategyConfig
from hkrt.node.process import Heartbeat, ProcessSpec, RestartPolicy, file_heartbeat, hkrt_command

DASHBOARD = "dashboard"
TOKEN_FILE = "dashboard.token"


def dashboard_heartbeat_path(config: NodeConfig) -> Path:
    return config.run_dir / "dashboard.heartbeat.json"


def relay_address(config: NodeConfig, strategy: StrategyConfig) -> str:
    """The strategy's relay address: an ipc socket in this user's private runtime dir (POSIX; a short path, as
    sockets need), or a named pipe (Windows), distinct per node (its run dir) and strategy."""
    index = [s.name for s in config.strategy].index(strategy.name)
    tag = hashlib.sha256(str(config.run_dir.expanduser().resolve()).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", strategy.name)[:24]
    if os.name == "nt":
        from hkrt.feed.transport import windows_pipe_name

        return f"ipc://{windows_pipe_name(os.environ.get('USERNAME', 'user'))}-dash-{tag}-{index}"
    from hkrt.feed.transport import runtime_dir

    return f"ipc://{runtime_dir() / f'dash-{tag}-{index}-{safe}.ipc'}"


def relay_args(config: NodeConfig, strategy: StrategyConfig) -> list[str]:
    """``hkrt run``'s arguments for the strategy's relay (none without a node dashboard)."""
    return ["--dashboard-relay", relay_address(config, strategy)] if config.dashboard else []


def dashboard_token_env(config: NodeConfig) -> tuple[dict[str, str], str]:
    """The environment that gives the dashboard child its token, and where the token is (for the node's line).
    Checks the address (NodeConfigError, one line): beyond loopback only with a token set by the operator."""
    from hkrt.dashboard.access import TOKEN_ENV, TOKEN_FILE_ENV
    from hkrt.ops.access import AccessError, check_bind, load_token, parse_address

    assert config.dashboard is not None
    try:
        bind = parse_address(config.dashboard)
        if os.environ.get(TOKEN_ENV, "").strip() or os.environ.get(TOKEN_FILE_ENV, "").strip():
            check_bind(bind, load_token(env=TOKEN_ENV, file_env=TOKEN_FILE_ENV), what="dashboard", env=TOKEN_ENV,
                       file_env=TOKEN_FILE_ENV)  # fmt: skip
            return {}, f"${TOKEN_ENV}" if os.environ.get(TOKEN_ENV, "").strip() else f"${TOKEN_FILE_ENV}"
        if config.dashboard_token_file is not None:
            path = config.dashboard_token_file
            check_bind(bind, _first_line(path), what="dashboard", env=TOKEN_ENV, file_env="dashboard-token-file")
            return {TOKEN_FILE_ENV: str(path)}, str(path)
        check_bind(bind, None, what="dashboard", env=TOKEN_ENV, file_env="dashboard-token-file")
    except AccessError as err:
        raise NodeConfigError(f"dashboard: {str(err).replace('metrics address', 'address')}") from None
    path = config.run_dir / TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    return {TOKEN_FILE_ENV: str(path)}, str(path)


def _first_line(path: Path) -> str:
    from hkrt.ops.access import AccessError

    try:
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise AccessError(f"dashboard-token-file: cannot read {path}: {err.strerror or err}") from None
    if not lines or not lines[0].strip():
        raise AccessError(f"dashboard-token-file: {path} is empty")
    return lines[0].strip()


def dashboard_specs(config: NodeConfig, policy: RestartPolicy) -> list[ProcessSpec]:
    """The dashboard child (none without the ``dashboard`` key): started after the strategies, stopped first."""
    if not config.dashboard:
        return []
    if not config.strategy:
        raise NodeConfigError("dashboard: the node runs no strategy to show (add strategy = [...])")
    from hkrt.node.plan import strategy_state_dir
    from hkrt.node.supervisor import STATUS_FILE

    env, _where = dashboard_token_env(config)
    args = ["dashboard", "--address", config.dashboard, "--node-status", str(config.run_dir / STATUS_FILE),
            "--heartbeat-file", str(dashboard_heartbeat_path(config))]  # fmt: skip
    for s in config.strategy:
        args += ["--relay", f"{s.name}={relay_address(config, s)}",
                 "--control", f"{s.name}={strategy_state_dir(config, s)}"]  # fmt: skip
    beat = Heartbeat(file_heartbeat(dashboard_heartbeat_path(config)), timeout=config.heartbeat_timeout,
                     startup=config.startup_timeout)  # fmt: skip
    return [ProcessSpec(DASHBOARD, hkrt_command(*args), restart=policy, heartbeat=beat,
                        stop_timeout=config.stop_timeout, env=env or None)]  # fmt: skip


def dashboard_line(config: NodeConfig) -> str:
    """What the node says about its dashboard (the token's place, never the token), or ""."""
    if not config.dashboard:
        return ""
    from hkrt.ops.access import parse_address

    _env, where = dashboard_token_env(config)
    return f"dashboard on http://{parse_address(config.dashboard)}/ (halt token: {where})"
