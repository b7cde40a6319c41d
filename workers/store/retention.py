"""Retention: deleting what mailroom no longer needs, a bounded batch at a time.

Rows go in the order the foreign keys allow (dead letters, emails, challenges,
events), and a row goes only once nothing that still exists refers to it: an
email while a dead letter names it is kept, and so are its challenge and event.
No foreign key ties suppressions and dead webhooks to the rest; they go last.
Each ``delete_*`` removes at most ``limit`` rows in one statement, so the caller
commits between batches and a large purge never holds its locks for long.

What never goes: an email still queued or sending, a challenge before its
expiry (or, never mailed, before it is older than its retention and without
the emails that could still mail it), a dead letter nobody dealt with before
its own limit, a suppression before its expiry (or one without any), a dead
webhook nobody replayed before its own limit.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
)

from domain.vocabulary import FINAL_STATUSES, DeadLetterStatus
from workers.store import failed_webhooks, sql
from workers.store.tables import (
    Challenge,
    Email,
    EventRow,
    FailedEmail,
    FailedWebhook,
    SuppressionRow,
)

FAILED, EMAILS, CHALLENGES, EVENTS = (
    FailedEmail.__table__, Email.__table__, Challenge.__table__, EventRow.__table__
)  # fmt: skip
SUPPRESSIONS, WEBHOOKS = SuppressionRow.__table__, FailedWebhook.__table__
F, E, C, V = FAILED.c, EMAILS.c, CHALLENGES.c, EVENTS.c
S, W = SUPPRESSIONS.c, WEBHOOKS.c

#: Rows one DELETE removes at most: many short statements, never one long lock.
PURGE_BATCH = 5_000

#: The PostgreSQL advisory lock a purge holds, so one process of a fleet purges
#: at a time (any fixed 64-bit key; this one spells "mr-purge").
PURGE_LOCK = int.from_bytes(b"mr-purge", "big")


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these times may go; None keeps that kind forever."""

    #: Finished emails, by when they were queued; suppressions, by their expiry.
    emails: datetime | None
    #: Ledger rows, by when the event was received.
    events: datetime | None
    #: Challenges, by their expiry (their creation if never mailed).
    challenges: datetime | None
    #: Dead letters (and dead webhooks) replayed or discarded, by when that happened.
    settled_dead_letters: datetime | None
    #: Every dead letter (and dead webhook), dealt with or not, by when it was filed.
    dead_letters: datetime | None


def _older(column, cutoff: datetime | None) -> ColumnElement[bool]:
    return false() if cutoff is None else column < cutoff


# The ``*_staying`` arguments say which referring rows keep a candidate: for a
# delete, every one that exists now (the foreign key's view); for a count, only
# those the same purge would not remove first.


def dead_letters_due(cut: Cutoffs) -> ColumnElement[bool]:
    settled = F.status.in_([DeadLetterStatus.REPLAYED, DeadLetterStatus.DISCARDED]) & _older(
        func.coalesce(F.discarded_at, F.replayed_at, F.created_at), cut.settled_dead_letters
    )
    return or_(settled, _older(F.created_at, cut.dead_letters))


def emails_due(cut: Cutoffs, failed_staying: ColumnElement[bool]) -> ColumnElement[bool]:
    return (
        E.status.in_(FINAL_STATUSES)
        & _older(E.created_at, cut.emails)
        & ~exists().where(F.email_id == E.id, failed_staying)
    )


def challenges_due(cut: Cutoffs, emails_staying: ColumnElement[bool]) -> ColumnElement[bool]:
    # Past the cutoff, a challenge with an expiry has expired; one never mailed
    # (no expiry) can only be mailed by one of its emails, and none is left.
    return _older(func.coalesce(C.expires_at, C.created_at), cut.challenges) & ~exists().where(
        E.challenge_id == C.id, emails_staying
    )


def events_due(
    cut: Cutoffs, emails_staying: ColumnElement[bool], challenges_staying: ColumnElement[bool]
) -> ColumnElement[bool]:
    return (
        _older(V.received_at, cut.events)
        & ~exists().where(E.event_id == V.id, emails_staying)
        & ~exists().where(C.event_id == V.id, challenges_staying)
    )


def suppressions_due(cut: Cutoffs) -> ColumnElement[bool]:
    # Kept a while after expiry, so `suppression list --all` still shows why
    # mail to an address stopped recently.
    return S.expires_at.is_not(None) & _older(S.expires_at, cut.emails)


def webhooks_due(cut: Cutoffs) -> ColumnElement[bool]:
    replayed = (W.status == failed_webhooks.REPLAYED) & _older(
        func.coalesce(W.replayed_at, W.created_at), cut.settled_dead_letters
    )
    return or_(replayed, _older(W.created_at, cut.dead_letters))


def _delete(conn: Connection, table, due: ColumnElement[bool], limit: int) -> int:
    # The candidates are chosen in a subquery of their own (not correlated with
    # the DELETE), which is what lets a LIMIT bound the batch on both databases.
    # A composite key is matched as a row value, (a, b) IN (SELECT a, b ...).
    keys = list(table.primary_key.columns)
    chosen = select(*keys).where(due).limit(limit).correlate(None)
    key = keys[0] if len(keys) == 1 else tuple_(*keys)
    return conn.execute(delete(table).where(key.in_(chosen))).rowcount


def delete_dead_letters(conn: Connection, cut: Cutoffs, limit: int = PURGE_BATCH) -> int:
    return _delete(conn, FAILED, dead_letters_due(cut), limit)


def delete_emails(conn: Connection, cut: Cutoffs, limit: int = PURGE_BATCH) -> int:
    return _delete(conn, EMAILS, emails_due(cut, true()), limit)


def delete_challenges(conn: Connection, cut: Cutoffs, limit: int = PURGE_BATCH) -> int:
    return _delete(conn, CHALLENGES, challenges_due(cut, true()), limit)


def delete_events(conn: Connection, cut: Cutoffs, limit: int = PURGE_BATCH) -> int:
    return _delete(conn, EVENTS, events_due(cut, true(), true()), limit)


def delete_suppressions(conn: Connection, cut: Cutoffs, limit: int = PURGE_BATCH) -> int:
    return _delete(conn, SUPPRESSIONS, suppressions_due(cut), limit)


def delete_webhooks(conn: Connection, cut: Cutoffs, limit: int = PURGE_BATCH) -> int:
    return _delete(conn, WEBHOOKS, webhooks_due(cut), limit)


#: Table name -> its delete, in the order the foreign keys allow.
DELETES: dict[str, Callable[[Connection, Cutoffs, int], int]] = {
    "failed_emails": delete_dead_letters,
    "emails": delete_emails,
    "challenges": delete_challenges,
    "events": delete_events,
    "suppressions": delete_suppressions,
    "failed_webhooks": delete_webhooks,
}


def count_due(conn: Connection, cut: Cutoffs) -> dict[str, int]:
    """What a purge with these cutoffs would delete, by table, deleting nothing.

    A row counts when everything referring to it would go first, as in the
    purge itself.
    """
    failed = dead_letters_due(cut)
    emails = emails_due(cut, ~failed)
    challenges = challenges_due(cut, ~emails)
    due = {
        "failed_emails": (FAILED, failed),
        "emails": (EMAILS, emails),
        "challenges": (CHALLENGES, challenges),
        "events": (EVENTS, events_due(cut, ~emails, ~challenges)),
        "suppressions": (SUPPRESSIONS, suppressions_due(cut)),
        "failed_webhooks": (WEBHOOKS, webhooks_due(cut)),
    }
    return {
        name: conn.scalar(select(func.count()).select_from(table).where(where))
        for name, (table, where) in due.items()
    }


def try_lock(conn: Connection) -> bool:
    """Take the purge lock for this connection's session, unless another holds it.

    Session-wide, not per transaction: a purge commits batch by batch and the
    lock must outlast them.  SQLite (one host, writes already serialized) has no
    such lock and needs none.
    """
    if not sql.is_postgres(conn):
        return True
    return bool(conn.scalar(select(func.pg_try_advisory_lock(PURGE_LOCK))))


def unlock(conn: Connection) -> None:
    if sql.is_postgres(conn):
        conn.scalar(select(func.pg_advisory_unlock(PURGE_LOCK)))
