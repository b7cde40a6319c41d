"""`mailroom emails list | show`: did a mail go out, and if not, what became of it.

Built like `mailroom failed list | show`: the same table, paging, masked
recipients with their keyed tag, `--since` and `--json`.
"""

from datetime import UTC, datetime

import click

from domain.addresses import recipient_tag
from domain.history import status_text
from domain.vocabulary import EmailStatus
from workers.cli.base import (
    Failure,
    address_key_of,
    cli,
    current_pepper,
    echo_json,
    open_engine,
    page_options,
    table,
)
from workers.cli.failed import parse_time
from workers.cli.failed_list import tagged_recipient
from workers.store import email_views

#: Longest error a table cell shows, in characters (`emails show` has it whole).
ERROR_WIDTH = 60
#: Characters before a value in `emails show`: the longest label and its colon, and a space.
LABEL_WIDTH = len("dead_letter_discarded_at: ")


def _time(ctx, param, value):
    return None if value is None else parse_time(value)


@cli.group()
def emails() -> None:
    """Find mail: by recipient, event, app, status or time, with its history."""


@emails.command("list")
@click.option(
    "--to",
    "recipient_key",
    metavar="ADDR",
    callback=address_key_of,
    help="Only mail to this address (case does not matter).",
)
@click.option("--event", "event_id", type=click.UUID, help="Only mail this event asked for.")
@click.option("--app", help="Only this app's mail (its events' source).")
@click.option(
    "--status", type=click.Choice([s.value for s in EmailStatus]), help="Only this status."
)
@click.option(
    "--since",
    callback=_time,
    help="Only mail created (written to the outbox) at or after: an ISO time or an age "
    "such as 30m, 2h, 7d.",
)
@page_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def emails_list(recipient_key, event_id, app, status, since, limit, offset, as_json) -> None:
    """List emails, newest first, a page at a time.

    RECIPIENT is masked, with a short keyed hash that tells two recipients
    apart; TRIES counts attempts begun; DEAD_LETTER names the dead letter a
    failed mail became (`mailroom failed show`).
    """
    filters = email_views.Filters(
        recipient_key=recipient_key,
        event_id=event_id,
        app=app,
        status=EmailStatus(status) if status else None,
        since=since,
    )
    with open_engine().connect() as conn:
        # One more than the page: whether there is a next one, without counting
        # every email there is.
        rows = email_views.page(conn, filters, limit=limit + 1 if limit else None, offset=offset)
    more = bool(limit) and len(rows) > limit
    rows = rows[:limit] if limit else rows
    pepper, now = current_pepper(), datetime.now(UTC)
    if as_json:
        echo_json([_with_tag(email_views.record(r, now), pepper) for r in rows])
        return
    if not rows:
        click.echo(f"no emails{f' at offset {offset}' if offset else ''}", err=True)
        return
    table(
        ["ID", "CREATED", "STATUS", "KIND", "APP", "RECIPIENT", "TRIES", "TRANSPORT", "SENT",
         "REPLAY_OF", "DEAD_LETTER", "ERROR"],
        [
            [
                str(r.id),
                _clock(r.created_at),
                status_text(r.status, r.suppressed_reason),
                r.kind,
                r.app,
                tagged_recipient(r, pepper),
                str(r.attempts),
                r.transport or "-",
                _clock(r.sent_at),
                f"#{r.replay_of}" if r.replay_of else "-",
                f"#{r.dead_letter_id}" if r.dead_letter_id else "-",
                _cut(r.last_error),
            ]
            for r in rows
        ],
    )  # fmt: skip
    last = offset + len(rows)
    following = f"; next page: --offset {last}" if more else ""
    click.echo(f"rows {offset + 1}-{last}, newest first{following}", err=True)


@emails.command("show")
@click.argument("email_id", metavar="ID", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def emails_show(email_id, as_json) -> None:
    """Show one email in full, with its dead letter and history.

    The recipient in full, the transport that took it, its Message-ID and the
    provider's id for it; never its code or link (they are not kept) nor its
    template data.
    """
    with open_engine().connect() as conn:
        row = email_views.one(conn, email_id)
    if row is None:
        raise Failure(f"no email with id {email_id}")
    shown = _with_tag(email_views.record(row, datetime.now(UTC)), current_pepper())
    if as_json:
        echo_json(shown)
        return
    steps = shown.pop("history")
    dead_letter = shown.pop("dead_letter") or {}
    fields = {**shown, **{f"dead_letter_{key}": value for key, value in dead_letter.items()}}
    for key, value in fields.items():
        if value not in (None, ""):
            click.echo(f"{key + ':':<{LABEL_WIDTH}}{value}")
    click.echo("history:")
    for step in steps:
        at = _clock(datetime.fromisoformat(step["at"])) if step["at"] else "(time not kept)"
        click.echo(f"  {at:<19}  {step['happened']:<13}  {step['detail'] or ''}".rstrip())


def _with_tag(shown: dict, pepper: bytes) -> dict:
    """The record, with the keyed tag `failed list` and the logs (`to_tag`) show."""
    tagged = {}
    for key, value in shown.items():
        tagged[key] = value
        if key == "recipient":
            tagged["recipient_tag"] = recipient_tag(pepper, value)
    return tagged


def _clock(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _cut(text: str | None) -> str:
    if not text:
        return "-"
    return (text[: ERROR_WIDTH - 3] + "...") if len(text) > ERROR_WIDTH else text
