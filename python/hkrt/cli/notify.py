"""``hkrt notify-test NAME --config FILE``: send one test alert through a notifier (docs/alerts.md)."""

from __future__ import annotations

import logging
import time

import click


@click.command("notify-test")
@click.argument("name")
@click.option(
    "--config", "config_file", default=None, type=click.Path(dir_okay=False),
    help="The TOML file with a [notify.NAME] table (settings also from HKRT_<NAME>_* variables).",
)  # fmt: skip
@click.option("--text", default="hkrt notify-test: if you read this, alerts reach you here.", help="The message.")
def notify_test(name: str, config_file: str | None, text: str) -> None:
    """Send a test alert through the notifier NAME (mail, dingtalk, wecom, feishu, telegram, or a table's name).

    Prints one line; exits 1 when it was not delivered."""
    from hkrt.notify import Alert, NotifyConfigError
    from hkrt.notify.settings import notifier_from_file

    try:
        notifier = notifier_from_file(name, config_file, retries=0)
    except (NotifyConfigError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from None
    logging.getLogger("hkrt.notify").setLevel(logging.ERROR)  # the failure is this command's one line
    started = time.monotonic()
    result = notifier.send(Alert("test", "critical", "test alert", text, source="notify-test"))
    seconds = time.monotonic() - started
    notifier.close()
    if not result.ok:
        raise click.ClickException(f"notify-test {name}: not delivered: {result.error}")
    click.echo(f"notify-test {name}: delivered in {seconds:.2f} s")
