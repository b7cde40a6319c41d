"""`mailroom failed ...`: the group, the filters its commands share, and discard.

The listing commands live in ``failed_list``, replay in ``failed_replay``.
"""

import re
import sys
from datetime import UTC, datetime, timedelta

import click

from domain.events import EVENT_TYPES
from domain.samples import SAMPLES
from domain.vocabulary import DeadLetterStatus, Reason
from workers.cli.base import EXIT_FAILED, cli, open_engine
from workers.store import dead_letters
from workers.store.dead_letter_views import Filters

#: What ``--kind`` takes: a kind of mail, or the type of an event that never became one.
KINDS = sorted(SAMPLES) + list(EVENT_TYPES)
STATUSES = [*(s.value for s in DeadLetterStatus), "all"]


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """An ISO time (UTC unless it says otherwise) or an age back from now."""
    match = re.fullmatch(r"(\d+)([smhd])", value)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an ISO time (2026-11-22T10:00Z) nor an age (30m, 2h, 7d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _time_option(ctx, param, value):
    return None if value is None else parse_time(value)


_FILTERS = [
    click.option(
        "--reason", type=click.Choice([r.value for r in Reason]), help="Only this reason."
    ),
    click.option(
        "--kind",
        type=click.Choice(KINDS),
        metavar="KIND",
        help="Only this kind of mail (signup, invite...) or event type (user.signup_requested...).",
    ),
    click.option("--app", help="Only this app (its events' source)."),
    click.option(
        "--since",
        callback=_time_option,
        help="Only dead-lettered at or after: an ISO time or an age such as 30m, 2h, 7d.",
    ),
    click.option("--until", callback=_time_option, help="Only dead-lettered before: as --since."),
]
#: The options' names, to tell whether any was given.
FILTER_NAMES = ("reason", "kind", "app", "since", "until")


def filter_options(command):
    for option in reversed(_FILTERS):
        command = option(command)
    return command


def make_filters(status: str | None, reason, kind, app, since, until) -> Filters:
    if since and until and since >= until:
        raise click.UsageError("--since must be before --until")
    return Filters(
        status=None if status in (None, "all") else DeadLetterStatus(status),
        reason=reason,
        kind=kind,
        app=app,
        since=since,
        until=until,
    )


@cli.group()
def failed() -> None:
    """List, summarize, inspect, replay and discard dead-lettered mail."""


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
