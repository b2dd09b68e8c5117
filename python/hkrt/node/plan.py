"""The node's children as :class:`~hkrt.node.process.ProcessSpec` from a :class:`~hkrt.node.config.NodeConfig`:
the spot server, the agent (journal, store, heartbeat file), the traders (hkrt.node.traders: a broker in a
process of its own, its heartbeat file), one ``hkrt run`` per strategy (its control channel's status.json is
its heartbeat; a broker in a trader reached with ``--broker remote``).  Started in this order, stopped in the
reverse one: the strategies before the traders, so their last orders and cancels get out.

A trader process per broker comes from hkrt.node.traders; the node's metrics and alerts add flags to these
(hkrt.node.ops_plan).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hkrt.node.config import SERVER_KEYS, VENUE_KEYS, NodeConfig, StrategyConfig, sim_days
from hkrt.node.dashboard_plan import dashboard_specs, relay_args
from hkrt.node.process import (
    Heartbeat,
    Launch,
    ProcessSpec,
    RestartPolicy,
    feed_heartbeat,
    file_heartbeat,
    hkrt_command,
    read_beat,
)

if TYPE_CHECKING:
    from hkrt.node.supervisor import Supervisor

SERVER, AGENT = "spot-server", "agent"


def feed_address(config: NodeConfig) -> str:
    """The address the node's children meet on: the config's, else this user's default ipc socket."""
    from hkrt.feed.transport import default_address

    return config.address or default_address()


def agent_heartbeat_path(config: NodeConfig) -> Path:
    return config.run_dir / "agent.heartbeat.json"


def strategy_state_dir(config: NodeConfig, strategy: StrategyConfig) -> Path:
    return strategy.state_dir if strategy.state_dir is not None else config.run_dir / "state" / strategy.name


def node_specs(config: NodeConfig) -> list[ProcessSpec]:
    policy = RestartPolicy(when="on-failure", backoff=config.backoff, backoff_max=config.backoff_max,
                           max_restarts=config.max_restarts, window=config.restart_window)  # fmt: skip
    finite = config.source in ("sim", "replay")
    from hkrt.node.traders import trader_children, trader_spec

    return [
        _server(config, policy, finite),
        _agent(config, RestartPolicy(**{**policy.__dict__, "when": "always"})),
        *(trader_spec(config, t, policy, finite) for t in trader_children(config)),
        *(_strategy(config, s, policy, finite) for s in config.strategy),
        *dashboard_specs(config, policy),
    ]


def _server(config: NodeConfig, policy: RestartPolicy, finite: bool) -> ProcessSpec:
    address = feed_address(config)
    days = sim_days(config) if config.source == "sim" else []
    strategies = [f"strategy-{s.name}" for s in config.strategy]
    from hkrt.node.scale_out import redis_route

    redis_url, redis_env = redis_route(config)

    def argv(launch: Launch) -> list[str]:
        args = ["spot-server", "--source", config.source, "--address", address]
        for key, (_field, flag) in VENUE_KEYS.items():
            value = getattr(config, key)
            if key == "date" and days:
                value = days[min(launch.run, len(days) - 1)]  # the next day of a multi-day sim
            if value is not None:
                args += [flag, str(value)]
        if len(days) > 1:  # each day's server continues the market from the first day's (one price history)
            args += ["--first-day", str(days[0])]
        for key, flag in SERVER_KEYS.items():
            value = getattr(config, key)
            if value is not None:
                args += [flag, str(value)]
        if redis_url is not None:
            args += ["--redis", redis_url]  # its password in the environment (redis_env)
        # an agent reading Redis is no subscriber here: its consumer group, made before this start, holds the day
        agent = 0 if config.redis is not None else 1
        if finite and launch.fresh:
            # the first day waits for everyone; a next day for the agent (the strategies re-dial by themselves,
            # and one the node gave up on would never come); a restart mid-day finds them connected
            # (the agent and each strategy still in the game: none may miss the first cycle)
            waited = agent + sum(name not in launch.gone for name in strategies) if launch.run == 0 else agent
            if waited:
                args += ["--wait-subscribers", str(waited)]
        return args

    beat = Heartbeat(feed_heartbeat(agent_heartbeat_path(config)), timeout=config.heartbeat_timeout, startup=None)
    return ProcessSpec(SERVER, lambda launch: hkrt_command(*argv(launch)), restart=policy, heartbeat=beat,
                       stop_timeout=config.stop_timeout, critical=True, completes_node=finite,
                       runs=max(1, len(days)), env=redis_env or None)  # fmt: skip


def restart_a_waiting_feed(supervisor: Supervisor, config: NodeConfig) -> None:
    """A simulated or replayed feed waits for the agent and every strategy before its first cycle; a strategy
    the node gives up on before that would keep it waiting for good.  Then the spot server is started again,
    waiting for those still in the game (nothing was published yet: nothing is lost)."""
    if config.source not in ("sim", "replay") or not config.strategy:
        return
    beat = agent_heartbeat_path(config)

    def on_event(kind: str, name: str, info: dict[str, Any]) -> None:
        if kind != "gave_up" or not name.startswith("strategy-"):
            return
        server = supervisor.stats()[SERVER]
        heard = (read_beat(beat) or {}).get("cycles") or 0  # spot cycles (its heartbeats are messages too)
        if server["state"] == "running" and server["runs"] == 0 and not heard:
            supervisor.restart(SERVER, f"{name} will never subscribe: wait for the others")

    supervisor.subscribe(on_event)


def _agent(config: NodeConfig, policy: RestartPolicy) -> ProcessSpec:
    from hkrt.node.scale_out import agent_feed_args, agent_store, redis_route

    beat_file = agent_heartbeat_path(config)
    store, env = agent_store(config)
    env = {**env, **redis_route(config)[1]}
    args = hkrt_command("agent", *agent_feed_args(config, feed_address(config)), "--store", store,
                        "--journal", str(config.journal_dir), "--heartbeat-file", str(beat_file))  # fmt: skip
    beat = Heartbeat(file_heartbeat(beat_file), timeout=config.heartbeat_timeout, startup=config.startup_timeout)
    return ProcessSpec(AGENT, args, restart=policy, heartbeat=beat, stop_timeout=config.stop_timeout, critical=True,
                       env=env or None)  # fmt: skip


def _strategy(config: NodeConfig, strategy: StrategyConfig, policy: RestartPolicy, finite: bool) -> ProcessSpec:
    from hkrt.node.traders import PAPER_CASH, books_from_account, brokers_of, strategy_remote_env, trader_of
    from hkrt.strategy.control import STATUS_FILE, control_dir

    state = strategy_state_dir(config, strategy)
    args = ["run", str(strategy.script), "--source", "feed", "--address", feed_address(config),
            "--state-dir", str(state)]  # fmt: skip
    if finite:
        args.append("--feed-is-sim")
    # a strategy restarted mid-day first replays the agent's journal of the day: its bars and indicators whole
    args += ["--backfill", str(config.journal_dir)]
    trader = trader_of(config, strategy)
    brokers = brokers_of(config, strategy) if trader is not None else strategy.brokers or config.broker
    for broker in brokers:  # the broker in a trader is reached as remote, in its place (the primary stays so)
        args += ["--broker", "remote" if trader is not None and broker == trader.broker else broker]
    if config.broker_config is not None:
        args += ["--config", str(config.broker_config)]
    cash = strategy.cash if strategy.cash is not None else config.cash
    if cash is None and trader is not None and trader.forward_market:
        cash = PAPER_CASH  # its paper account's in the trader: the book starts with the same
    if books_from_account(config, strategy):
        args += ["--book", "broker"]  # a real account: a (re)started strategy knows what it holds and has
    elif cash is not None:
        args += ["--cash", repr(cash)]
    args += relay_args(config, strategy)
    beat = Heartbeat(file_heartbeat(control_dir(state) / STATUS_FILE), timeout=config.heartbeat_timeout,
                     startup=config.startup_timeout)  # fmt: skip
    return ProcessSpec(f"strategy-{strategy.name}", hkrt_command(*args), restart=policy, heartbeat=beat,
                       stop_timeout=config.stop_timeout,
                       env=strategy_remote_env(trader) if trader is not None else None)  # fmt: skip
