"""`mailroom failed list | show | summary`: dead letters by the hundred, each
with its replay chain, recipients told apart without being shown."""

from collections import Counter
from datetime import UTC, datetime

import click

from domain.addresses import mask_address, recipient_tag
from domain.replays import AGE_BUCKETS, age_bucket, short_age
from workers.cli.base import Failure, current_pepper, echo_json, open_engine, page_options, table
from workers.cli.failed import STATUSES, failed, filter_options, make_filters
from workers.store import dead_letter_views

#: Longest ERROR a `failed list` table shows without --wide, in characters.
ERROR_SHOWN = 60


def replay_outcome(row) -> str | None:
    """What became of this dead letter's replay, in a word or three."""
    if row.status != "replayed":
        return None
    if row.replayed_email_id is None:
        return "published"  # an event, back in the stream
    if row.copy_status is None:
        return "purged"
    if row.again_id is not None:
        return f"dead again #{row.again_id} ({row.again_reason})"
    if row.copy_status == "suppressed":
        return f"suppressed ({row.copy_suppressed})"
    return row.copy_status


def tagged_recipient(row, pepper: bytes) -> str:
    """A row's recipient as listings show it: masked, with its keyed tag."""
    if not row.recipient:
        return "-"
    return f"{mask_address(row.recipient)}#{recipient_tag(pepper, row.recipient)}"


def record(row, pepper: bytes, now: datetime) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "created_at": iso(row.created_at),
        "status": row.status,
        "reason": row.reason,
        "error": row.error,
        "attempts": row.attempts,
        "kind": row.kind,
        "app": row.app,
        "recipient": row.recipient,
        "recipient_tag": recipient_tag(pepper, row.recipient) if row.recipient else None,
        "requested_at": iso(row.requested_at),
        "age_seconds": int((now - row.requested_at).total_seconds()),
        "email_id": str(row.email_id) if row.email_id else None,
        "event_id": str(row.event_id) if row.event_id else None,
        "event_type": row.event_type,
        "replay_of": row.replay_of,
        "replayed_as": str(row.replayed_email_id) if row.replayed_email_id else None,
        "replay_outcome": replay_outcome(row),
        "replayed_email_id": str(row.replayed_email_id) if row.replayed_email_id else None,
        "replayed_at": iso(row.replayed_at),
        "discarded_at": iso(row.discarded_at),
        "payload": row.payload,
    }


@failed.command("list")
@filter_options
@click.option("--status", type=click.Choice(STATUSES), default="dead", show_default=True)
@page_options
@click.option("--oldest", is_flag=True, help="Oldest first (default: newest first).")
@click.option(
    "--wide", is_flag=True, help=f"Each ERROR whole (default: cut at {ERROR_SHOWN} characters)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_list(
    reason, kind, app, since, until, status, limit, offset, oldest, wide, as_json
) -> None:
    """List dead letters, newest first, a page at a time, with the total.

    RECIPIENT is masked, with a short keyed hash that tells two recipients
    apart; REPLAY_OF names the dead letter a row's mail replayed; REPLAYED_AS
    says what became of its own replay.  ERROR is cut to fit a line: --wide
    or `mailroom failed show ID` shows it whole.
    """
    filters = make_filters(status, reason, kind, app, since, until)
    with open_engine().connect() as conn:
        rows = dead_letter_views.page(
            conn, filters, limit=limit, offset=offset, newest_first=not oldest
        )
        count = dead_letter_views.total(conn, filters)
    pepper, now = current_pepper(), datetime.now(UTC)
    if as_json:
        echo_json([record(r, pepper, now) for r in rows])
        return
    if not rows:
        where = f" at offset {offset} ({count} in all)" if count else ""
        click.echo(f"no dead letters{where}", err=True)
        return
    table(
        ["ID", "FAILED", "AGE", "STATUS", "REASON", "KIND", "APP", "RECIPIENT", "TRIES",
         "REPLAY_OF", "REPLAYED_AS", "ERROR"],
        [
            [
                str(r.id),
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                short_age(now - r.requested_at),
                r.status,
                r.reason,
                r.kind or r.event_type or "-",
                r.app or "-",
                tagged_recipient(r, pepper),
                str(r.attempts),
                f"#{r.replay_of}" if r.replay_of else "-",
                replay_outcome(r) or "-",
                _error_cell(r.error, wide),
            ]
            for r in rows
        ],
    )  # fmt: skip
    last = offset + len(rows)
    order = "oldest" if oldest else "newest"
    more = f"; next page: --offset {last}" if last < count else ""
    click.echo(f"rows {offset + 1}-{last} of {count}, {order} first{more}", err=True)
    if not wide and any(len(_one_line(r.error)) > ERROR_SHOWN for r in rows):
        click.echo("errors cut: --wide or `mailroom failed show ID` shows them whole", err=True)


def _one_line(text: str) -> str:
    # A provider's multi-line reply would break the table's rows.
    return " ".join(text.split())


def _error_cell(error: str, wide: bool) -> str:
    text = _one_line(error)
    if wide or len(text) <= ERROR_SHOWN:
        return text
    return text[: ERROR_SHOWN - 3] + "..."


@failed.command("show")
@click.argument("failed_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_show(failed_id, as_json) -> None:
    """Show one dead letter in full, with its replay chain."""
    with open_engine().connect() as conn:
        row = dead_letter_views.one(conn, failed_id)
    if row is None:
        raise Failure(f"no dead letter with id {failed_id}")
    shown = record(row, current_pepper(), datetime.now(UTC))
    if as_json:
        echo_json(shown)
        return
    for key, value in shown.items():
        if key != "payload" and value is not None:
            click.echo(f"{key + ':':<19}{value}")
    if row.payload is not None:
        click.echo("payload:")
        click.echo(row.payload)


@failed.command("summary")
@filter_options
@click.option("--status", type=click.Choice(STATUSES), default="dead", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_summary(reason, kind, app, since, until, status, as_json) -> None:
    """Count dead letters by reason, kind, app and age (since the request)."""
    filters = make_filters(status, reason, kind, app, since, until)
    with open_engine().connect() as conn:
        rows = dead_letter_views.page(conn, filters)
    now = datetime.now(UTC)
    counts = {
        "reason": Counter(r.reason for r in rows),
        # As the KIND column and --kind: an event that never became mail by its type.
        "kind": Counter(r.kind or r.event_type or "-" for r in rows),
        "app": Counter(r.app or "-" for r in rows),
        "age": Counter(age_bucket(now - r.requested_at) for r in rows),
    }
    ages = {label: counts["age"][label] for label, _ in AGE_BUCKETS}
    summary = {
        "total": len(rows),
        "status": status,
        "by_reason": dict(counts["reason"].most_common()),
        "by_kind": dict(counts["kind"].most_common()),
        "by_app": dict(counts["app"].most_common()),
        "by_age": ages,
    }
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{len(rows)} dead letters ({status})")
    for title, values in (
        ("REASON", summary["by_reason"]),
        ("KIND", summary["by_kind"]),
        ("APP", summary["by_app"]),
        ("AGE", ages),
    ):
        if rows:
            click.echo("")
            table([title, "COUNT"], [[key, str(n)] for key, n in values.items()])
