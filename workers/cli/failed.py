"""`mailroom failed ...`: list, inspect, replay and discard dead letters."""

import re
import sys
from datetime import UTC, datetime, timedelta

import click

from domain.addresses import mask_address
from domain.vocabulary import DeadLetterStatus, Reason
from workers.cli.base import (
    EXIT_FAILED,
    Failure,
    build,
    cli,
    echo_json,
    open_engine,
    table,
)
from workers.redisconn import connect
from workers.store import dead_letters


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
@click.option("--reason", type=click.Choice([r.value for r in Reason]), help="Only this reason.")
@click.option("--since", help="Only newer: an ISO time or an age such as 30m, 2h, 7d.")
@click.option(
    "--status",
    type=click.Choice([*(s.value for s in DeadLetterStatus), "all"]),
    default="dead",
    show_default=True,
)
@click.option("--limit", type=int, help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_list(reason, since, status, limit, as_json) -> None:
    """List dead letters, oldest first."""
    with open_engine().connect() as conn:
        rows = dead_letters.list_failed(
            conn,
            reason=reason,
            since=_parse_since(since),
            status=None if status == "all" else status,
            limit=limit,
        )
    if as_json:
        echo_json([_failed_dict(r) for r in rows])
        return
    if not rows:
        click.echo("no dead letters", err=True)
        return
    table(
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
    with open_engine().connect() as conn:
        row = dead_letters.get(conn, failed_id)
    if row is None:
        raise Failure(f"no dead letter with id {failed_id}")
    record = _failed_dict(row)
    if as_json:
        echo_json(record)
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
@click.option(
    "--reason", type=click.Choice([r.value for r in Reason]), help="With --all: only this reason."
)
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_replay(failed_ids, replay_all, reason, dry_run, as_json) -> None:
    """Send dead-lettered mail again with a fresh code or link.

    An email is queued anew (its challenge gets a new secret when it is sent);
    an event that never became mail is published again.  A row is replayed
    once: replaying it again is refused.
    """

    from workers.replay import replay

    if bool(failed_ids) == replay_all:
        raise click.UsageError("give dead-letter IDs or --all")
    if reason and not replay_all:
        raise click.UsageError("--reason goes with --all")
    runtime = build()
    results, errors = [], 0
    try:
        with runtime.engine.connect() as conn:
            if replay_all:
                failed_ids = [r.id for r in dead_letters.list_failed(conn, reason=reason)]
        if not failed_ids:
            raise Failure("nothing to replay")
        with connect(runtime.redis_url) as client:
            for failed_id in failed_ids:
                result = replay(runtime, client, failed_id, dry_run=dry_run).as_dict()
                errors += "error" in result
                results.append(result)
                if not as_json:
                    _say_replay(result)
    finally:
        runtime.close()
    if as_json:
        echo_json(results)
    if errors:
        sys.exit(EXIT_FAILED)


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
    engine = open_engine()
    errors = 0
    now = datetime.now(UTC)
    for failed_id in failed_ids:
        with engine.begin() as conn:
            if dead_letters.discard(conn, failed_id, now):
                click.echo(f"{failed_id}: discarded")
                continue
            row = dead_letters.get(conn, failed_id)
        errors += 1
        problem = f"is already {row.status}" if row else "does not exist"
        click.echo(f"mailroom: dead letter {failed_id} {problem}", err=True)
    if errors:
        sys.exit(EXIT_FAILED)
