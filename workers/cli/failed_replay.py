"""`mailroom failed replay`: send dead-lettered mail again, guarded, paced, and
(with ``--wait``) followed to its outcome."""

import sys
import time
import uuid
from collections import Counter
from contextlib import nullcontext
from datetime import timedelta

import click

from domain.replays import Skip, short_age
from workers.cli.base import EXIT_FAILED, EXIT_UNREACHABLE, Failure, build, echo_json
from workers.cli.failed import FILTER_NAMES, failed, filter_options, make_filters
from workers.store import dead_letter_views

#: Replayed mails per second unless ``--rate`` says otherwise: hundreds in a
#: minute or two, while live sign-ups' p95 stays within twice its idle value
#: (measured: 20/s reached 1.8-2.0x on two cores).
DEFAULT_RATE = 10.0
#: Seconds between two looks at the replayed mail under ``--wait``.
WAIT_POLL = 0.5
FINAL = ("sent", "failed", "suppressed")

_WHY = {
    Skip.TOO_OLD: "asked too long ago",
    Skip.REJECTED: "the address refused it for good",
    Skip.RATE_LIMITED: "the recipient is at its rate limit",
    Skip.LOCKED: "the address is cooling down after wrong codes",
}


@failed.command("replay")
@click.argument("failed_ids", metavar="ID...", type=int, nargs=-1)
@click.option(
    "--all", "replay_all", is_flag=True, help="Replay every dead letter the filters keep."
)
@filter_options
@click.option(
    "--force",
    is_flag=True,
    help="Replay also what the guards leave alone: too old, rejected (550), rate-limited.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be sent and skipped; change nothing.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_RATE,
    show_default=True,
    help="Replayed mails per second: they are queued at once, due one after another.",
)
@click.option("--wait", is_flag=True, help="Wait for the replayed mail's outcome and report it.")
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds --wait waits at most.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failed_replay(failed_ids, replay_all, force, dry_run, rate, wait, wait_timeout, as_json,
                  **filter_values) -> None:  # fmt: skip
    """Send dead-lettered mail again with a fresh code or link.

    An email is queued anew in the database (its challenge gets a new secret
    when it is sent) and the workers send it, through the broker or, with Redis
    down, their sweeper within about 15 s; an event that never became mail is
    published again (that needs Redis).  A row is replayed once.

    Unless --force, rows are skipped whose request is older than
    MAILROOM_REPLAY_CODE_MAX_AGE (codes and reset links) or
    MAILROOM_REPLAY_NOTICE_MAX_AGE (invitations, notices), that were rejected
    (550), or whose recipient is at its rate limit.
    """
    from workers.replay import LazyRedis

    if not replay_all and any(filter_values[name] for name in FILTER_NAMES):
        raise click.UsageError("--reason, --kind, --app, --since and --until go with --all")
    if bool(failed_ids) == replay_all:
        raise click.UsageError("give dead-letter IDs or --all")
    if wait and dry_run:
        raise click.UsageError("--wait does not go with --dry-run")
    filters = make_filters("dead", **filter_values)
    runtime = build()
    client = LazyRedis(runtime.redis_url)
    try:
        if replay_all:
            with runtime.engine.connect() as conn:
                rows = dead_letter_views.page(conn, filters, newest_first=False)
            failed_ids = [row.id for row in rows]
        if not failed_ids:
            raise Failure("nothing to replay")
        results = _replay_all(runtime, client, failed_ids, force, dry_run, rate, as_json)
        summary = _summary(results, dry_run)
        if wait:
            summary["wait"] = _wait(runtime, results, wait_timeout)
    finally:
        client.close()
        runtime.close()
    if as_json:
        echo_json({**summary, "rows": [r.as_dict() for r in results]})
    else:
        _say_summary(summary, force)
    sys.exit(_exit_code(summary, dry_run))


def _replay_all(rt, client, failed_ids, force, dry_run, rate, as_json) -> list:
    from workers.replay import replay

    start, planned, results, later = rt.clock(), Counter(), [], []
    use_broker, emails = True, 0
    # A bar on a terminal, then what was not replayed; a line per row in a log
    # or a pipe, and for a dry run (the listing an admin reads first).
    bar = not (as_json or dry_run) and sys.stderr.isatty()
    rows = click.progressbar(failed_ids, label="replaying", file=sys.stderr) if bar else None
    with rows or nullcontext(failed_ids) as ids:
        for failed_id in ids:
            # Paced: each replayed email is due 1/rate s after the one before.
            due = start + timedelta(seconds=emails / rate)
            result = replay(rt, client, failed_id, dry_run=dry_run, force=force, due=due,
                            planned=planned, use_broker=use_broker)  # fmt: skip
            results.append(result)
            if result.new_email_id:
                emails += 1
                # One refusal says the broker is down: the rest go to the sweeper
                # without each waiting on Redis.
                use_broker = use_broker and bool(result.handed_on)
            if as_json:
                continue
            if not bar:
                _say(result, rt)
            elif result.error or result.skipped:
                later.append(result)
    for result in later:
        _say(result, rt)
    return results


def _facts(result) -> str:
    age = f", asked {short_age(result.age)} ago" if result.age is not None else ""
    return f"({result.kind or 'unknown kind'}, {result.reason}{age})"


def _say(result, rt) -> None:
    if result.error:
        click.echo(f"mailroom: {result.error}", err=True)
    elif result.skipped:
        verb = "would skip" if result.dry_run else "skipped"
        why = _WHY.get(result.skipped, result.skipped)
        if result.skipped == Skip.TOO_OLD:
            from workers.replay import limits_for

            why += f" (limit {short_age(limits_for(rt).max_age(result.kind))})"
        click.echo(f"{result.id}: {verb} {result.skipped}: {why} {_facts(result)}")
    elif result.dry_run:
        click.echo(f"{result.id}: would replay {result.target} {_facts(result)}")
    elif result.new_email_id:
        via = "the broker" if result.handed_on else "the workers' sweeper (broker unreachable)"
        click.echo(
            f"{result.id}: replayed as email {result.new_email_id}: queued, "
            f"{via} sends it {_facts(result)}"
        )
    else:
        click.echo(f"{result.id}: event published again {_facts(result)}")


def _summary(results: list, dry_run: bool) -> dict:
    emails = [r for r in results if r.new_email_id or (r.dry_run and r.target == "email")]
    events = [r for r in results if r.target == "event" and not r.error and not r.skipped]
    return {
        "dry_run": dry_run,
        "replayed": {
            "emails": sum(not r.skipped and not r.error for r in emails),
            "events": len(events),
        },
        "skipped": dict(Counter(r.skipped for r in results if r.skipped).most_common()),
        "errors": sum(bool(r.error) for r in results),
        "unreachable": sum(r.unreachable for r in results),
        "left_to_sweeper": sum(r.new_email_id is not None and not r.handed_on for r in results),
        "new_email_ids": [r.new_email_id for r in results if r.new_email_id],
    }


def _wait(rt, results: list, timeout: float) -> dict:
    """Follow the replayed emails until each is sent, failed or suppressed, or
    ``timeout`` passes."""
    wanted = [uuid.UUID(r.new_email_id) for r in results if r.new_email_id]
    started = time.monotonic()
    while True:
        with rt.engine.connect() as conn:
            rows = dead_letter_views.outcomes(conn, wanted)
        done = time.monotonic() - started >= timeout
        if all(row.status in FINAL for row in rows) or done:
            break
        time.sleep(WAIT_POLL)
    again = [row for row in rows if row.status == "failed"]
    return {
        "seconds": round(time.monotonic() - started, 1),
        "delivered": sum(row.status == "sent" for row in rows),
        "failed_again": dict(Counter(row.again_reason or "?" for row in again).most_common()),
        "failed_again_ids": sorted(row.again_id for row in again if row.again_id),
        "suppressed": dict(Counter(r.suppressed_reason for r in rows if r.status == "suppressed")),
        "pending": sum(row.status not in FINAL for row in rows),
    }


def _counts(counts: dict) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items())


def _say_summary(summary: dict, force: bool) -> None:
    replayed = summary["replayed"]
    verb = "would replay" if summary["dry_run"] else "replayed"
    line = f"{verb} {replayed['emails']} email(s) and {replayed['events']} event(s)"
    if summary["skipped"]:
        skipped = sum(summary["skipped"].values())
        line += f"; skipped {skipped}: {_counts(summary['skipped'])}"
        if not force:
            line += " (--force replays them)"
    if summary["errors"]:
        line += f"; {summary['errors']} error(s)"
    click.echo(line)
    if summary["left_to_sweeper"]:
        click.echo(
            f"the broker is unreachable: the {summary['left_to_sweeper']} queued email(s) "
            "are sent by the workers' sweeper within about 15 s"
        )
    if summary["unreachable"]:
        click.echo(
            "mailroom: cannot reach Redis: the events were not published again and their "
            "dead letters stay dead; replay them once Redis is back",
            err=True,
        )
    wait = summary.get("wait")
    if wait:
        line = f"after {wait['seconds']} s: delivered {wait['delivered']}"
        failed_again = sum(wait["failed_again"].values())
        line += f", failed again {failed_again}"
        if failed_again:
            ids = ", ".join(f"#{i}" for i in wait["failed_again_ids"])
            line += f" ({_counts(wait['failed_again'])}: {ids})"
        if wait["suppressed"]:
            line += f", not sent {sum(wait['suppressed'].values())} ({_counts(wait['suppressed'])})"
        if wait["pending"]:
            line += f", still pending {wait['pending']} (the workers keep at it)"
        click.echo(line)


def _exit_code(summary: dict, dry_run: bool) -> int:
    if summary["unreachable"]:
        return EXIT_UNREACHABLE
    if summary["errors"]:
        return EXIT_FAILED
    replayed = summary["replayed"]
    if not dry_run and not (replayed["emails"] or replayed["events"]):
        return EXIT_FAILED  # every row skipped: nothing was done
    wait = summary.get("wait")
    if wait and (wait["failed_again"] or wait["pending"]):
        return EXIT_FAILED
    return 0
