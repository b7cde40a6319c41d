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

#: Seconds send-test waits on Redis to record the transports' health.
HEALTH_TIMEOUT = 3.0


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
    """Send a test mail through the transports, in failover order.

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
    settings = current_settings()
    app = _sending_app(settings, app_id)
    sender, sender_name = app.from_address, app.from_name
    now = datetime.now(UTC)
    attempts = []
    # (transport, its error or None), for the health `mailroom status` shows.
    outcomes: list[tuple[str, Exception | None]] = []
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
            dkim=app.dkim,  # signed as the app's mail is, to check DKIM with
        )
        try:
            receipt = backend.send(message, sender=sender, recipient=recipient)
        except MailroomError as exc:
            outcomes.append((name, exc))
            attempts.append({"transport": name, "error": str(exc), "check": _hint(name, exc)})
            if not as_json:
                click.echo(f"{name}: failed: {exc}", err=True)
                click.echo(f"{name}: {_hint(name, exc)}", err=True)
            continue
        finally:
            backend.close()
        outcomes.append((name, None))
        _record_health(settings, outcomes)
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
    _record_health(settings, outcomes)
    if as_json:
        echo_json(attempts)
    sys.exit(EXIT_FAILED)


def _sending_app(settings, app_id: str | None):
    """The app whose From the test mail carries: --app, else the default app."""
    from workers.apps import load_directory

    directory = load_directory(settings)
    if app_id is None:
        if directory.default is None:
            raise click.UsageError(
                f"{settings.apps_file} names no default app: give one of "
                f"{', '.join(sorted(directory.apps))} with --app"
            )
        return directory.default
    if app := directory.apps.get(app_id):
        return app
    if settings.apps_file is None:
        raise click.BadParameter(
            f"no app {app_id!r}: without MAILROOM_APPS_FILE there are no named apps, only "
            "the default one from the MAILROOM_* settings (leave out --app)",
            param_hint="'--app'",
        )
    raise click.BadParameter(
        f"no app {app_id!r} in {settings.apps_file} "
        f"(its apps: {', '.join(sorted(directory.apps)) or 'none'})",
        param_hint="'--app'",
    )


def _record_health(settings, outcomes: list[tuple[str, Exception | None]]) -> None:
    """Record what the attempts showed, as the workers would: `ok` for the transport
    that accepted, `misconfigured` or `failing` for one that failed; a refusal of
    the message or recipient says nothing of the transport's health.  Without
    Redis (no `mailroom dev` running) there is nowhere to keep it, nor a
    `mailroom status` to show it: nothing is recorded."""
    import redis

    from domain.errors import ConfigError, PermanentError, TransportConfigError
    from workers import health
    from workers.embedded import redis_url_for
    from workers.redisconn import connect

    judged = [
        (name, error)
        for name, error in outcomes
        if not isinstance(error, PermanentError) or isinstance(error, TransportConfigError)
    ]
    if not judged:
        return
    try:
        url = redis_url_for(settings)
    except ConfigError:
        return
    client = connect(url, socket_connect_timeout=HEALTH_TIMEOUT, socket_timeout=HEALTH_TIMEOUT)
    try:
        for name, error in judged:
            health.record(client, name, error)
    except redis.RedisError as exc:
        click.echo(f"mailroom: transport health not recorded: cannot reach Redis: {exc}", err=True)
    finally:
        client.close()
