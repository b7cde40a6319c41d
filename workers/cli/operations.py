"""Operating mailroom: `config show`, `send-test` (`status` has a module of its own)."""

import sys
from datetime import UTC, datetime

import click

from workers.cli.base import (
    EXIT_FAILED,
    cli,
    current_settings,
    echo_json,
    table,
)


@cli.group()
def config() -> None:
    """The configuration in force."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(as_json: bool) -> None:
    """Every setting's effective value (secrets masked) and where it came from."""
    from workers.settings_shown import effective

    rows = effective(current_settings())
    if as_json:
        echo_json({row["setting"]: row["value"] for row in rows})
        return
    table(
        ["SETTING", "VALUE", "SOURCE"],
        [[r["setting"], "-" if r["value"] is None else r["value"], r["source"]] for r in rows],
    )


def _hint(transport: str, error: Exception) -> str:
    """What to look at when a transport fails in a given way."""
    from domain.errors import PermanentError, TransportConfigError
    from workers.transports.registry import backend

    if isinstance(error, TransportConfigError):
        return f"check {error.setting}"
    if isinstance(error, PermanentError):
        return (
            "the server refused the message or the recipient: check the address, and that "
            "MAILROOM_MAIL_FROM may send through this provider (verified sender, SPF/DKIM)"
        )
    return backend(transport).HINT  # the backend's own: which settings and what network


@cli.command("send-test")
@click.option("--to", "recipient", required=True, help="Where the test mail goes.")
@click.option("--app", "app_id", help="Send as this app (its From); default: the default app.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def send_test(recipient: str, app_id: str | None, as_json: bool) -> None:
    """Send a test mail through the configured transport(s), in failover order.

    Prints the transport that accepted it, or each transport's exact error and
    what to check.  Exit 0 if one accepted it, 1 if none did.
    """
    from domain.addresses import normalize_address
    from domain.errors import MailroomError
    from domain.messages import build_message, message_id_for
    from workers.transports import make_backend

    try:
        recipient = normalize_address(recipient)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    from workers.apps import load_directory

    settings = current_settings()
    directory = load_directory(settings)
    app = directory.apps.get(app_id) if app_id else directory.default
    if app is None:
        raise click.UsageError(
            f"no app {app_id!r} in the apps file"
            if app_id
            else "the apps file has no default app: name one with --app"
        )
    sender, sender_name = app.from_address, app.from_name
    now = datetime.now(UTC)
    attempts = []
    for name in settings.transports:
        backend = make_backend(name, settings)
        message = build_message(
            sender=sender,
            sender_name=sender_name,
            recipient=recipient,
            subject="mailroom test message",
            text=f"This test message was sent by `mailroom send-test` through {name} at "
            f"{now:%Y-%m-%d %H:%M:%S} UTC.\n",
            html=f"<p>This test message was sent by <code>mailroom send-test</code> through "
            f"{name} at {now:%Y-%m-%d %H:%M:%S} UTC.</p>",
            message_id=message_id_for(sender),
            date=now,
        )
        try:
            receipt = backend.send(message, sender=sender, recipient=recipient)
        except MailroomError as exc:
            attempts.append({"transport": name, "error": str(exc), "check": _hint(name, exc)})
            if not as_json:
                click.echo(f"{name}: failed: {exc}", err=True)
                click.echo(f"{name}: {_hint(name, exc)}", err=True)
            continue
        finally:
            backend.close()
        attempts.append(
            {
                "transport": name,
                "accepted": True,
                "destination": receipt.destination,
                "provider_id": receipt.provider_id,
                "message_id": message["Message-ID"],
            }
        )
        if as_json:
            echo_json(attempts)
        else:
            extra = f", id {receipt.provider_id}" if receipt.provider_id else ""
            click.echo(f"{name}: accepted ({receipt.destination}{extra}) {message['Message-ID']}")
        return
    if as_json:
        echo_json(attempts)
    sys.exit(EXIT_FAILED)
