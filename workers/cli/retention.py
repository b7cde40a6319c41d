"""`mailroom purge`: delete what the retention settings let go, or count it."""

from datetime import UTC, datetime

import click

from workers.cli.base import Failure, cli, current_settings, echo_json, open_engine, table

_DAYS = click.IntRange(min=0)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Count what would be removed; delete nothing.")
@click.option("--emails-days", type=_DAYS, help="This run: MAILROOM_RETAIN_EMAILS_DAYS.")
@click.option("--events-days", type=_DAYS, help="This run: MAILROOM_RETAIN_EVENTS_DAYS.")
@click.option("--challenges-days", type=_DAYS, help="This run: MAILROOM_RETAIN_CHALLENGES_DAYS.")
@click.option(
    "--dead-letters-days", type=_DAYS, help="This run: MAILROOM_RETAIN_DEAD_LETTERS_DAYS."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def purge(
    dry_run: bool,
    emails_days: int | None,
    events_days: int | None,
    challenges_days: int | None,
    dead_letters_days: int | None,
    as_json: bool,
) -> None:
    """Delete finished emails, challenges, events, dead letters, expired suppressions
    and dead webhooks past their retention.

    What is still referred to stays (an email while its dead letter is kept, a
    challenge and an event while one of their emails is); a suppression goes the
    emails' days after it expired, a dead webhook as a dead letter does; 0 days
    keeps a kind forever.  The workers purge hourly on their own; exit 1 when another
    process is purging right now.
    """
    from dataclasses import replace

    from workers import retention

    overrides = {
        "emails": emails_days,
        "events": events_days,
        "challenges": challenges_days,
        "dead_letters": dead_letters_days,
    }
    kept = replace(
        retention.Retention.from_settings(current_settings()),
        **{kind: days for kind, days in overrides.items() if days is not None},
    )
    engine = open_engine()
    try:
        now = datetime.now(UTC)
        if dry_run:
            counts = retention.preview(engine, now, kept)
        else:
            counts = retention.purge(engine, now, kept)
    finally:
        engine.dispose()
    if counts is None:
        raise Failure("another process is purging right now; try again once it is done")
    if as_json:
        echo_json({"dry_run": dry_run, "counts": counts, "retention_days": vars(kept)})
        return
    table(
        ["TABLE", "WOULD REMOVE" if dry_run else "REMOVED"],
        [[name, str(count)] for name, count in counts.items()],
    )
