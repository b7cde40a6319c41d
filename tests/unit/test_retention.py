"""Retention on SQLite: exactly which rows a purge removes, in any batch size;
the dry run counts the same and deletes nothing; the purger logs what went."""

import json
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from domain.errors import ConfigError
from tests import aged_rows
from tests.conftest import make_event
from workers import intake
from workers.cli import cli
from workers.retention import Purger, Retention, preview, purge
from workers.settings import load_settings
from workers.store.tables import Challenge, Email, EventRow

NOTHING = dict.fromkeys(aged_rows.TABLES, 0)


@pytest.fixture
def aged(unit):
    now = unit.rt.clock()
    with unit.rt.engine.begin() as conn:
        ids = aged_rows.build(conn, now)
    return now, ids


def left(unit, ids) -> dict[str, set[str]]:
    with unit.rt.engine.connect() as conn:
        return aged_rows.remaining(conn, ids)


def test_the_default_retention_removes_exactly_what_it_should(unit, aged):
    now, ids = aged
    expected = aged_rows.gone_counts(ids)
    assert expected == {
        "failed_emails": 4,
        "emails": 8,
        "challenges": 4,
        "events": 6,
        "suppressions": 1,
        "failed_webhooks": 2,
    }

    assert preview(unit.rt.engine, now, Retention()) == expected
    assert left(unit, ids) == {name: set(ids[name]) for name in ids}  # the count deleted nothing

    assert purge(unit.rt.engine, now, Retention()) == expected
    assert left(unit, ids) == aged_rows.KEPT
    assert purge(unit.rt.engine, now, Retention()) == NOTHING
    assert preview(unit.rt.engine, now, Retention()) == NOTHING


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_small_batches_remove_the_same_rows(unit, aged, batch):
    now, ids = aged
    assert purge(unit.rt.engine, now, Retention(), batch=batch) == aged_rows.gone_counts(ids)
    assert left(unit, ids) == aged_rows.KEPT


def test_zero_days_keeps_everything(unit, aged):
    now, ids = aged
    forever = Retention(emails=0, events=0, challenges=0, dead_letters=0)
    assert preview(unit.rt.engine, now, forever) == NOTHING
    assert purge(unit.rt.engine, now, forever) == NOTHING
    assert left(unit, ids) == {name: set(ids[name]) for name in ids}


def test_emails_kept_forever_keep_their_challenges_and_events(unit, aged):
    now, ids = aged
    retention = Retention(emails=0)
    counts = preview(unit.rt.engine, now, retention)
    assert purge(unit.rt.engine, now, retention) == counts
    remaining = left(unit, ids)
    assert remaining["emails"] == set(ids["emails"])
    assert remaining["challenges"] == set(ids["challenges"])
    assert set(ids["events"]) - remaining["events"] == {"ledger_only"}
    # Settled dead letters follow the emails; the untouched ones their own limit.
    assert set(ids["failed_emails"]) - remaining["failed_emails"] == {
        "ancient_dead",
        "invalid_ancient",
    }
    # Expired suppressions follow the emails too; dead webhooks as dead letters.
    assert remaining["suppressions"] == set(ids["suppressions"])
    assert set(ids["failed_webhooks"]) - remaining["failed_webhooks"] == {"dead_old"}


def test_suppressions_go_by_expiry_and_webhooks_by_replay_or_filing(unit, aged):
    now, ids = aged
    retention = Retention(emails=1, dead_letters=0)
    counts = preview(unit.rt.engine, now, retention)
    assert purge(unit.rt.engine, now, retention) == counts
    remaining = left(unit, ids)
    # Expired a day ago or more; neither the live one, created long ago, nor one
    # until lifted, nor the same address's other scope.
    assert remaining["suppressions"] == {"same_address_for_all_apps", "until_lifted", "live"}
    # Replayed a day ago or more; dead ones wait for someone, kept forever.
    assert remaining["failed_webhooks"] == {"dead_old", "dead_recent"}
    assert counts["suppressions"] == 2
    assert counts["failed_webhooks"] == 2


def test_stopping_before_the_first_batch_removes_nothing(unit, aged):
    now, ids = aged
    stopping = threading.Event()
    stopping.set()
    assert purge(unit.rt.engine, now, Retention(), stopping=stopping) == NOTHING
    assert left(unit, ids) == {name: set(ids[name]) for name in ids}


def test_mail_from_the_pipeline_goes_once_old_and_done(unit):
    intake.accept_event(unit.rt, json.dumps(make_event()))
    intake.accept_event(unit.rt, json.dumps(make_event(data={"email": "grace@example.com"})))
    unit.drain()
    with unit.rt.engine.begin() as conn:  # the second one is stuck, queued
        emails = Email.__table__
        conn.execute(
            update(emails)
            .where(emails.c.recipient == "grace@example.com")
            .values(status="queued", sent_at=None)
        )
    assert sorted(e.status for e in unit.rows(Email)) == ["queued", "sent"]

    soon = unit.rt.clock() + timedelta(days=29)
    assert purge(unit.rt.engine, soon, Retention()) == NOTHING
    later = unit.rt.clock() + timedelta(days=31)
    removed = purge(unit.rt.engine, later, Retention())
    assert removed == {**NOTHING, "emails": 1, "challenges": 1, "events": 1}
    [queued] = unit.rows(Email)
    assert queued.status == "queued"
    assert [c.id for c in unit.rows(Challenge)] == [queued.challenge_id]
    assert [e.id for e in unit.rows(EventRow)] == [queued.event_id]


def test_the_purger_purges_on_its_schedule_and_logs_the_counts(unit, aged):
    now, ids = aged
    purger = Purger(unit.rt.engine, lambda: now, Retention(), interval=0.05, first_within=0)
    purger.start()
    try:
        deadline = threading.Event()
        for _ in range(100):
            if any(line["event"] == "retention.purged" for line in unit.log_lines()):
                break
            deadline.wait(0.05)
    finally:
        purger.stop()
        purger.join(timeout=5)
    assert not purger.is_alive()
    [first, *_] = [line for line in unit.log_lines() if line["event"] == "retention.purged"]
    assert {name: first[name] for name in aged_rows.TABLES} == aged_rows.gone_counts(ids)
    assert left(unit, ids) == aged_rows.KEPT
    assert not any("@" in line for line in unit.log.getvalue().splitlines())


def test_retention_settings_default_and_refuse_negative_days():
    settings = load_settings({})
    assert Retention.from_settings(settings) == Retention(
        emails=30, events=30, challenges=7, dead_letters=90
    )
    keep = load_settings({"MAILROOM_RETAIN_EVENTS_DAYS": "0", "MAILROOM_RETAIN_EMAILS_DAYS": "60"})
    assert Retention.from_settings(keep) == Retention(emails=60, events=0)
    with pytest.raises(ConfigError) as caught:
        load_settings({"MAILROOM_RETAIN_DEAD_LETTERS_DAYS": "-1"})
    assert str(caught.value).startswith("MAILROOM_RETAIN_DEAD_LETTERS_DAYS: must be between 0")


def test_the_command_counts_then_purges_on_sqlite(unit, aged):
    _now, ids = aged
    env = {"DATABASE_URL": unit.rt.settings.database_url}
    runner = CliRunner()
    dry = runner.invoke(cli, ["purge", "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output)
    assert report["dry_run"] is True
    assert report["counts"] == aged_rows.gone_counts(ids)
    assert report["retention_days"] == {
        "emails": 30,
        "events": 30,
        "challenges": 7,
        "dead_letters": 90,
    }
    assert left(unit, ids) == {name: set(ids[name]) for name in ids}

    # Overridden for one run: events kept a year, so only the ledger stays.
    done = runner.invoke(cli, ["purge", "--events-days", "365"], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "TABLE            REMOVED",
        "failed_emails    4",
        "emails           8",
        "challenges       4",
        "events           0",
        "suppressions     1",
        "failed_webhooks  2",
    ]
    assert runner.invoke(cli, ["purge", "--emails-days", "-1"], env=env).exit_code == 2

    # The recently expired suppression is still there to be listed.
    listed = runner.invoke(cli, ["suppression", "list", "--all", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert sorted((r["address"], r["app"], r["live"]) for r in json.loads(listed.output)) == [
        ("blocked@example.com", "*", True),
        ("cooling@example.com", "notes", True),
        ("gone@example.com", "*", True),
        ("lapsed@example.com", "notes", False),
    ]
