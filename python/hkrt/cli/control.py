"""``hkrt halt``, ``hkrt resume``, ``hkrt status``: the kill switch of a running strategy, through the
control files in its state dir (hkrt.strategy.control; docs/kill-switch.md)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

TIMEOUT_HELP = "Seconds to wait for the strategy's answer."


def _strategy_arg(f: Any) -> Any:
    return click.argument("strategy", metavar="NAME_OR_STATE_DIR")(f)


def _send(strategy: str, command: str, reason: str, timeout: float) -> tuple[Any, dict[str, Any]]:
    from hkrt.strategy.control import ControlError, resolve_state_dir, send_command

    try:
        state_dir = resolve_state_dir(strategy)
        return state_dir, send_command(state_dir, command, reason, timeout=timeout)
    except ControlError as err:
        raise click.ClickException(str(err)) from None


@click.command("halt")
@_strategy_arg
@click.option("--reason", required=True, help="Why (logged, and shown by hkrt status until resumed).")
@click.option("--timeout", default=10.0, show_default=True, type=float, help=TIMEOUT_HELP)
def halt(strategy: str, reason: str, timeout: float) -> None:
    """Kill switch: cancel every working order of a running strategy and refuse new ones until resumed.

    NAME_OR_STATE_DIR: the strategy's name (its state dir is ~/.hkrt/state/NAME, as hkrt run makes it
    for a live run) or its state dir (hkrt run --state-dir)."""
    state_dir, answer = _send(strategy, "halt", reason, timeout)
    if not answer.get("ok", False):
        raise click.ClickException(f"halt not done: {answer.get('error') or 'the strategy gave no reason'}")
    cancelled = answer.get("cancelled")
    asked = "cancels still going out" if cancelled is None else f"{cancelled} working orders asked to cancel"
    still = answer.get("open_orders")
    tail = f"; {still} still open until their brokers confirm the cancels" if still else ""
    click.echo(f"halted {state_dir}: {asked}; trading {answer.get('state')} ({answer.get('reason')}){tail}")
    if answer.get("error"):
        click.echo(f"note: {answer['error']}")


@click.command("resume")
@_strategy_arg
@click.option("--reason", required=True, help="Why trading may go on (logged).")
@click.option("--timeout", default=10.0, show_default=True, type=float, help=TIMEOUT_HELP)
def resume(strategy: str, reason: str, timeout: float) -> None:
    """Let a halted (or reducing) strategy trade again."""
    state_dir, answer = _send(strategy, "resume", reason, timeout)
    if not answer.get("ok", False):
        raise click.ClickException(f"resume not done: {answer.get('error') or 'the strategy gave no reason'}")
    was = answer.get("previous")
    change = f"{was} -> {answer.get('state')}" if answer.get("changed") else f"already {answer.get('state')}"
    click.echo(f"resumed {state_dir}: trading {change} ({answer.get('reason')})")


@click.command("status")
@_strategy_arg
@click.option("--json", "as_json", is_flag=True, help="Print the whole status as JSON.")
def status(strategy: str, as_json: bool) -> None:
    """A strategy's trading state, its reason, open orders and heartbeat (read from its state dir)."""
    from hkrt.strategy.control import ControlError, read_status, resolve_state_dir, stale

    try:
        state_dir = resolve_state_dir(strategy)
        st = read_status(state_dir)
    except ControlError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False, indent=1, default=str))
        return
    for line in status_lines(st, str(state_dir), stale(st)):
        click.echo(line)


def status_lines(st: dict[str, Any], where: str, stale_reason: str) -> list[str]:
    """``hkrt status`` in a few lines: who, the state, the orders, the heartbeat, the last command."""
    age = st.get("heartbeat_age_s")
    beat = "never" if age is None else f"{age:.1f} s ago"
    lines = [
        f"strategy {st.get('name', '?')} (pid {st.get('pid', '?')}, {'live' if st.get('live') else 'played day'}) "
        f"at {where}"
    ]
    if stale_reason:
        lines.append(f"STALE: {stale_reason}")
    state = f"trading {st.get('state', '?')}"
    if st.get("reason"):
        state += f": {st['reason']}"
    if st.get("since"):
        state += f" (since {st['since']} market time)"
    lines.append(state)
    lines.append(
        f"open orders {st.get('open_orders', '?')}; market time {st.get('market_time') or '-'}; heartbeat {beat}"
    )
    last = st.get("last_command")
    if isinstance(last, dict):
        done = last.get("done")
        when = dt.datetime.fromtimestamp(done).strftime("%H:%M:%S") if isinstance(done, (int, float)) else "?"
        did = f"{last.get('cancelled')} cancels" if last.get("command") == "halt" else str(last.get("state"))
        lines.append(
            f"last command: {last.get('command')} at {when} ({last.get('reason')}): "
            f"{did}{'' if last.get('ok') else ' FAILED: ' + str(last.get('error'))}"
        )
    deadman = st.get("deadman")
    if isinstance(deadman, dict):
        stats = deadman.get("stats") or {}
        text = (
            f"dead-man switch: strategy {deadman.get('strategy_timeout')} s, feed {deadman.get('feed_timeout')} s; "
            f"fired {stats.get('fired', 0)}"
        )
        alert = deadman.get("last_alert")
        if isinstance(alert, dict):
            text += f"; last at {alert.get('wall')}: {alert.get('reason')}"
        lines.append(text)
    control = st.get("control") or {}
    if control.get("malformed"):
        lines.append(f"command files set aside: {control['malformed']} (see {where}/control/rejected)")
    return lines
