"""The node's trader children (``hkrt trader``, docs/trader-process.md): which broker of which strategy runs in a
process of its own, where each trader listens, and the specs that start them.

- Every broker a strategy names runs in a trader except ``test`` (it fills at once in memory: nothing to hang)
  and ``remote`` (already one); the node key ``trader = false``, or ``trader = false`` in a strategy's table,
  keeps a strategy's brokers in its own process.
- A real account (``mail``, ``easytrader``, ``qmt``) is one account whoever trades it: one ``trader-<broker>``
  serves every strategy that names it (each strategy gets the reports of its own orders).
- A paper account is a simulation of one strategy's money: a trader serves every client on one account, so
  the node starts ``trader-paper-<strategy>`` per strategy (two strategies never trade each other's shares
  or cash).  Its prices are the strategy's own: the strategy's RemoteBroker forwards the spots and day
  closes its bus delivers (``forward_market``), so the paper broker matches as it would in-process.
- A strategy reaches one trader (``--broker remote`` takes one ``[remote]`` setting): one whose brokers would
  need two is refused (one line) unless it keeps them in-process.
- A strategy restarted by the node starts a fresh book; its paper trader then starts a fresh account
  (:func:`renew_paper_accounts_with_their_strategy`), as an in-process paper broker would.

Each trader listens on an owner-only ipc socket in the run dir (in this user's runtime dir when that path
would pass the socket-path limit), journals the client ids it sent in ``<run dir>/traders/`` (no order sent
twice across a restart; a paper trader keeps its account there too, opened afresh when the node starts it
first and taken back at each restart) and rewrites ``<run dir>/trader-<name>.heartbeat.json`` every second
while its request loop turns: a frozen trader is killed and restarted by the supervisor like any hung child.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hkrt.node.config import NodeConfig, NodeConfigError, StrategyConfig
from hkrt.node.process import Heartbeat, Launch, ProcessSpec, RestartPolicy, file_heartbeat, hkrt_command

if TYPE_CHECKING:
    from hkrt.node.supervisor import Supervisor

IN_PROCESS = ("test", "remote")  # brokers a strategy always keeps: nothing that can hang, or already a trader
PER_STRATEGY = ("paper",)  # simulated accounts: one trader per strategy
MAX_SOCKET_PATH = 100  # bytes; sun_path holds 108 on Linux, 104 on macOS (with its terminating NUL)
PAPER_CASH = 1_000_000.0  # a paper account's starting cash (and its strategy's) when neither node nor strategy sets one


@dataclass(frozen=True)
class TraderChild:
    """One trader the node runs: its child name (``trader-<broker>`` or ``trader-paper-<strategy>``), the
    broker it hosts, the strategies it serves and its address."""

    name: str
    broker: str
    strategies: tuple[str, ...]
    address: str
    cash: float | None = None  # a paper account's starting cash (the strategy's)

    @property
    def forward_market(self) -> bool:
        return self.broker in PER_STRATEGY


def brokers_of(config: NodeConfig, strategy: StrategyConfig) -> tuple[str, ...]:
    """The brokers ``strategy`` names, the first primary (the node's ``broker`` when it names none; test)."""
    return strategy.brokers or config.broker or ("test",)


def books_from_account(config: NodeConfig, strategy: StrategyConfig) -> bool:
    """Whether ``strategy``'s primary broker is a real account (one that reports its cash and positions, not a
    simulated one): then its book starts from that account at every start (``hkrt run --book broker``), never
    from a cash setting, so a strategy restarted mid-day knows what it holds."""
    from hkrt.adapters import registry

    primary = brokers_of(config, strategy)[0]
    if primary in PER_STRATEGY or primary not in registry.execution_venues():
        return False
    return registry.venue(primary).reports_account


def traded_broker(config: NodeConfig, strategy: StrategyConfig) -> str | None:
    """The broker of ``strategy`` that runs in a trader, or None (all in its own process); NodeConfigError
    when it would need two."""
    if not (strategy.trader if strategy.trader is not None else config.trader):
        return None
    traded = [b for b in dict.fromkeys(brokers_of(config, strategy)) if b not in IN_PROCESS]
    if len(traded) > 1:
        raise NodeConfigError(
            f"strategy {strategy.name}: brokers {' and '.join(traded)} would each need a trader, and a strategy "
            "reaches one (--broker remote): keep them in its process with trader = false in its [[strategy]] table"
        )
    return traded[0] if traded else None


def trader_children(config: NodeConfig) -> list[TraderChild]:
    """The traders of ``config``, in the order of their first strategy."""
    out: dict[str, TraderChild] = {}
    for strategy in config.strategy:
        broker = traded_broker(config, strategy)
        if broker is None:
            continue
        if broker in PER_STRATEGY:
            name = f"trader-{broker}-{strategy.name}"
            cash = strategy.cash if strategy.cash is not None else config.cash
            out[name] = TraderChild(name, broker, (strategy.name,), trader_address(config, name), cash)
        else:
            name = f"trader-{broker}"
            known = out.get(name)
            served = (*known.strategies, strategy.name) if known is not None else (strategy.name,)
            out[name] = TraderChild(name, broker, served, trader_address(config, name))
    return list(out.values())


def trader_of(config: NodeConfig, strategy: StrategyConfig) -> TraderChild | None:
    for child in trader_children(config):
        if strategy.name in child.strategies:
            return child
    return None


def trader_address(config: NodeConfig, name: str) -> str:
    """``ipc://<run dir>/<name>.ipc``; in this user's runtime dir (named after the run dir) when that path is
    too long for a socket; Windows: a pipe named after the user, the run dir and the trader."""
    tag = hashlib.sha256(str(config.run_dir.expanduser().absolute()).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    if os.name == "nt":
        from hkrt.feed.transport import _login_name, windows_pipe_name

        return f"ipc://{windows_pipe_name(_login_name())}-node-{tag}-{name}"
    path = config.run_dir.expanduser().absolute() / f"{name}.ipc"
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return f"ipc://{path}"
    from hkrt.feed.transport import runtime_dir

    short = runtime_dir() / f"node-{tag}-{name}.ipc"
    if len(os.fsencode(short)) > MAX_SOCKET_PATH:  # a long strategy name: its hash instead
        short = runtime_dir() / f"node-{tag}-{hashlib.sha256(name.encode()).hexdigest()[:12]}.ipc"
    return f"ipc://{short}"


def trader_heartbeat_path(config: NodeConfig, child: TraderChild) -> Path:
    return config.run_dir / f"{child.name}.heartbeat.json"


def trader_journal_path(config: NodeConfig, child: TraderChild) -> Path:
    return config.run_dir / "traders" / f"{child.name}.journal"


def trader_account_path(config: NodeConfig, child: TraderChild) -> Path:
    return config.run_dir / "traders" / f"{child.name}.account.json"


def trader_spec(config: NodeConfig, child: TraderChild, policy: RestartPolicy, finite: bool) -> ProcessSpec:
    """``hkrt trader`` for ``child``: restarted whatever its end (strategies need it), never critical (without
    it a strategy's orders are reported rejected: never sent)."""
    beat_file = trader_heartbeat_path(config, child)
    args = ["trader", "--broker", child.broker, "--name", child.name, "--address", child.address,
            "--journal", str(trader_journal_path(config, child)), "--heartbeat-file", str(beat_file),
            "--guard", "none" if finite else "now"]  # fmt: skip
    if config.broker_config is not None:
        args += ["--config", str(config.broker_config)]
    if child.broker in PER_STRATEGY:
        args += ["--cash", repr(child.cash if child.cash is not None else PAPER_CASH), "--account-file",
                 str(trader_account_path(config, child))]  # fmt: skip

    def argv(launch: Launch) -> list[str]:
        # a paper account is the node run's: its first start opens it with the cash, a restart after a crash or
        # a hang takes it back; a restart asked for (its strategy restarted with a fresh book) opens it afresh
        fresh = child.broker in PER_STRATEGY and (launch.attempt == 0 or launch.fresh)
        return hkrt_command(*args, *(["--new-account"] if fresh else []))

    beat = Heartbeat(file_heartbeat(beat_file), timeout=config.heartbeat_timeout, startup=config.startup_timeout)
    return ProcessSpec(child.name, argv, restart=RestartPolicy(**{**policy.__dict__, "when": "always"}),
                       heartbeat=beat, stop_timeout=config.stop_timeout)  # fmt: skip


def strategy_remote_env(child: TraderChild) -> dict[str, str]:
    """The environment that makes a strategy's ``--broker remote`` reach ``child`` (hkrt run's ``[remote]``
    settings; the environment wins over the broker config's table)."""
    return {
        "HKRT_REMOTE_ADDRESS": child.address,
        "HKRT_REMOTE_NAME": child.broker,
        "HKRT_REMOTE_FORWARD_MARKET": "true" if child.forward_market else "false",
    }


def renew_paper_accounts_with_their_strategy(supervisor: Supervisor, config: NodeConfig) -> None:
    """A restarted strategy starts a fresh book (``hkrt run`` keeps none), as an in-process paper broker would
    start a fresh account with it: its paper trader is restarted with a fresh account too (the same cash), so
    the book and the account stay one story.  A real account is never touched: the strategy's reconcile names
    what differs."""
    paper = {f"strategy-{name}": child.name for child in trader_children(config) if child.forward_market
             for name in child.strategies}  # fmt: skip

    def on_event(kind: str, name: str, info: dict[str, Any]) -> None:
        trader = paper.get(name)
        if kind == "restarting" and trader is not None:
            supervisor.restart(trader, f"{name} restarted with a fresh book: a fresh paper account")

    if paper:
        supervisor.subscribe(on_event)
