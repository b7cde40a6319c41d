"""Operating mailroom: `config show`, `send-test`, `status`."""

import sys
from datetime import UTC, datetime

import click

from workers.cli.base import (
    EXIT_FAILED,
    cli,
    current_settings,
    echo_json,
    open_engine,
    table,
)
from workers.redisconn import connect
from workers.store import claims, dead_letters, outbox


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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Transports' health, mail by status, dead letters and queue depths.

    Emails still `sending` after their claim lapsed are counted as stale (their
    worker died; the sweeper sends them again).  Exit 1 when a transport is
    misconfigured or failing (for monitoring).
    """
    from workers import health
    from workers.actors import EVENTS_QUEUE, MAIL_QUEUE
    from workers.broker import NAMESPACE
    from workers.embedded import redis_url_for
    from workers.ingress import STREAM

    settings = current_settings()
    with open_engine().connect() as conn:
        emails = outbox.count_by_status(conn)
        stale = claims.count_stale(conn, datetime.now(UTC))
        dead = dead_letters.count(conn)
    with connect(redis_url_for(settings)) as client:
        transports = health.read(client)
        queues = {
            "ingress": client.xlen(STREAM) if client.exists(STREAM) else 0,
            EVENTS_QUEUE: client.llen(f"{NAMESPACE}:{EVENTS_QUEUE}"),
            MAIL_QUEUE: client.llen(f"{NAMESPACE}:{MAIL_QUEUE}"),
        }
    unknown = {"state": "unknown", "error": None, "setting": None}
    # Only what is configured now: a transport dropped from the list is history.
    transports = {name: transports.get(name, unknown) for name in settings.transports}
    report = {
        "transports": transports,
        "emails": emails,
        "stale_sending": stale,
        "dead_letters": dead,
        "queues": queues,
    }
    broken = any(state["state"] in ("misconfigured", "failing") for state in transports.values())
    if as_json:
        echo_json(report)
        sys.exit(EXIT_FAILED if broken else 0)
    for name, state in transports.items():
        line = f"transport {name}: {state['state']}"
        if state.get("error"):
            line += f": {state['error']}"
        click.echo(line)
    click.echo("emails: " + (", ".join(f"{k} {v}" for k, v in sorted(emails.items())) or "none"))
    if stale:
        click.echo(f"stale: {stale} sending past their claim (their worker is gone)")
    click.echo(f"dead letters: {dead}")
    click.echo("queued: " + ", ".join(f"{k} {v}" for k, v in queues.items()))
    if broken:
        sys.exit(EXIT_FAILED)
