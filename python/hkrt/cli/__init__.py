"""The ``hkrt`` command line: ``main`` (the console script ``hkrt = "hkrt.cli:main"``) and one module per
command: ``spot_server``, ``agent``, ``run``, ``demo``, ``store`` (``hkrt export``),
``control`` (``hkrt halt``, ``resume``, ``status``), ``notify`` (``hkrt notify-test``), ``node`` (the supervised
processes), ``trader`` (a broker in a process of its own).

Every command imports what it needs (agent, server, venue adapters, pandas, pynng, pyarrow) inside its
body, so ``hkrt --help`` and a mistyped option cost only click, the C++ core and the venue registry's
table of names (tests/test_lean_import.py holds this).
"""

from __future__ import annotations

import sys

import click

from hkrt.cli.signals import exit_status as _exit_status
from hkrt.cli.signals import install_default_handlers, restore_handlers, signum_of, stopped_line


class _Commands(click.Group):
    """The ``hkrt`` group: Ctrl-C and SIGTERM end any command with one line and 128 + the signal (hkrt.cli.signals);
    click's own "Aborted!" and exit status 1 never show."""

    def invoke(self, ctx: click.Context) -> object:
        replaced = install_default_handlers()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as interrupt:  # hkrt.cli.signals.Stopped (SIGTERM) included
            signum = signum_of(interrupt)
            if _stderr_is_terminal():
                click.echo(err=True)  # off the "^C" the terminal echoed
            click.echo(stopped_line(ctx.invoked_subcommand, signum), err=True)
            ctx.exit(_exit_status(signum))
        finally:
            restore_handlers(replaced)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hkrt")
def main() -> None:
    """hkrt: real-time market data and K-lines for China A-shares.

    Ctrl-C or SIGTERM stops any command cleanly, exit status 130 or 143.  Shell completion:
    eval "$(_HKRT_COMPLETE=bash_source hkrt)" (zsh: zsh_source, fish: fish_source; docs/cli.md)."""


from hkrt.cli.spot_server import spot_server  # noqa: E402  (the commands need `main` no more than this)

main.add_command(spot_server)

from hkrt.cli.agent import agent  # noqa: E402

main.add_command(agent)

from hkrt.cli.run import run  # noqa: E402

main.add_command(run)

from hkrt.cli.demo import demo  # noqa: E402

main.add_command(demo)

from hkrt.cli.store import export  # noqa: E402

main.add_command(export)

from hkrt.cli.control import halt, resume, status  # noqa: E402

main.add_command(halt)
main.add_command(resume)
main.add_command(status)

from hkrt.cli.notify import notify_test  # noqa: E402

main.add_command(notify_test)

from hkrt.cli.node import node  # noqa: E402

main.add_command(node)

from hkrt.cli.trader import trader  # noqa: E402

main.add_command(trader)

from hkrt.cli.dashboard import dashboard  # noqa: E402

main.add_command(dashboard)

__all__ = ["main"]
