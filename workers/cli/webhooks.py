"""`mailroom webhooks failed | replay`: the webhooks given up on, and sending them again."""

import json

import click

from workers.cli.base import Failure, build, cli, echo_json, open_engine, table
from workers.store import failed_webhooks

#: Longest LAST ERROR a table shows, in characters.
ERROR_SHOWN = 40
STATUSES = [failed_webhooks.DEAD, failed_webhooks.REPLAYED, "all"]


@cli.group()
def webhooks() -> None:
    """Webhooks every attempt failed to deliver: list, replay."""


def _record(row) -> dict:
    try:
        payload = json.loads(row.payload)
    except ValueError:
        payload = row.payload
    return {
        "id": row.id,
        "created_at": row.created_at.isoformat(),
        "status": row.status,
        "app": row.app,
        "webhook_id": row.webhook_id,
        "type": payload.get("type") if isinstance(payload, dict) else None,
        "url": row.url,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None,
        "payload": payload,
    }


@webhooks.command("failed")
@click.option("--app", help="Only this app's webhooks.")
@click.option("--status", type=click.Choice(STATUSES), default="dead", show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="At most this many rows, oldest first; 0 for all.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def webhooks_failed(app, status, limit, as_json) -> None:
    """List webhooks given up on after MAILROOM_WEBHOOK_ATTEMPTS attempts, oldest first."""
    engine = open_engine()
    try:
        with engine.connect() as conn:
            rows = failed_webhooks.listing(
                conn, status=None if status == "all" else status, app=app, limit=limit
            )
    finally:
        engine.dispose()
    records = [_record(row) for row in rows]
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo("no failed webhooks")
        return
    table(
        ["ID", "FAILED AT", "STATUS", "APP", "TYPE", "WEBHOOK ID", "ATTEMPTS", "LAST ERROR"],
        [
            [str(r["id"]), r["created_at"][:19], r["status"], r["app"], r["type"] or "-",
             r["webhook_id"], str(r["attempts"]), _cut(r["last_error"])]
            for r in records
        ],
    )  # fmt: skip


def _cut(text: str) -> str:
    return text if len(text) <= ERROR_SHOWN else text[: ERROR_SHOWN - 3] + "..."


@webhooks.command("replay")
@click.argument("failed_ids", metavar="ID...", type=int, nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed webhook (of --app).")
@click.option("--app", help="With --all: only this app's webhooks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def webhooks_replay(failed_ids, replay_all, app, as_json) -> None:
    """Send failed webhooks again, to the app's current URL, signed anew.

    Each keeps its webhook-id, so a receiver that did take it drops the repeat;
    it gets MAILROOM_WEBHOOK_ATTEMPTS attempts again (and a new row if they all
    fail).  A row is replayed once.  The workers send it: Redis must be up.
    """
    from workers import webhooks as sending

    if app is not None and not replay_all:
        raise click.UsageError("--app goes with --all")
    if bool(failed_ids) == replay_all:
        raise click.UsageError("give failed-webhook IDs or --all")
    runtime = build()
    replayed, skipped = [], []
    try:
        with runtime.engine.connect() as conn:
            ids = None if replay_all else list(failed_ids)
            rows = {row.id: row for row in failed_webhooks.listing(conn, status=None, app=app,
                                                                   ids=ids)}  # fmt: skip
        for failed_id in failed_ids or [i for i, r in rows.items() if r.status == "dead"]:
            row = rows.get(failed_id)
            why = _unreplayable(runtime, row)
            if why is not None:
                skipped.append({"id": failed_id, "why": why})
                continue
            with runtime.engine.begin() as conn:
                # Marked first, sent before the commit: a replay is queued once.
                if not failed_webhooks.mark_replayed(conn, failed_id, runtime.clock()):
                    skipped.append({"id": failed_id, "why": "already replayed"})
                    continue
                sending.enqueue(runtime.broker, row.app, row.webhook_id, row.payload)
            replayed.append(failed_id)
    finally:
        runtime.close()
    _report(replayed, skipped, as_json)


def _unreplayable(runtime, row) -> str | None:
    if row is None:
        return "no such failed webhook"
    if row.status != failed_webhooks.DEAD:
        return "already replayed"
    app = runtime.apps.apps.get(row.app)
    if app is None or app.webhook is None:
        return f"app {row.app!r} has no webhook_url in the apps file any more"
    return None


def _report(replayed: list[int], skipped: list[dict], as_json: bool) -> None:
    if as_json:
        echo_json({"replayed": replayed, "skipped": skipped})
    else:
        if replayed:
            click.echo(f"replayed {len(replayed)}: {', '.join(map(str, replayed))}")
        for skip in skipped:
            click.echo(f"skipped #{skip['id']}: {skip['why']}", err=True)
    if not replayed:
        raise Failure("nothing replayed")
