"""Use case: accept events: validate, deduplicate, plan, persist, queue their mail."""

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from domain.addresses import address_key
from domain.errors import InvalidEvent
from domain.events import parse_event, redact
from domain.flows import Plan, gate, plan_event
from domain.policy import RATE_LIMIT_WINDOW
from domain.vocabulary import Purpose, Reason
from workers import metrics, outcomes
from workers.delivery import CLAIM_LEASE, Planned
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import challenges, dead_letters, ledger, outbox

log = get_logger("mailroom.pipeline")


class Entry(NamedTuple):
    """One stream entry as the ingress bridge read it."""

    raw: str
    #: Why it could not even be read as text (None when it could).
    rejected: str | None = None
    #: When the producer appended it (the stream entry's id): when the user
    #: asked.  Deadlines count from here, not from when a worker got to it.
    asked_at: datetime | None = None


@dataclass(frozen=True)
class _Accepted:
    event: object
    plan: Plan
    asked_at: datetime


@dataclass(frozen=True)
class _Refused:
    raw: str
    reason: Reason
    error: str
    event: object = None


def accept_event(rt: Runtime, raw: str, *, rejected: str | None = None) -> None:
    """Accept one event (see ``accept_batch``)."""
    accept_batch(rt, [(raw, rejected)])


def accept_batch(rt: Runtime, entries: list[Entry | tuple]) -> None:
    """Validate, deduplicate, plan and persist a batch of events in one
    transaction; then queue their mail.

    Invalid events are dead-lettered in the same transaction.  When the
    database refuses a value of one event (one it cannot store, say), the batch
    is taken apart so that event is dead-lettered alone and the others go
    through.  Any other database error raises with nothing kept: the caller
    keeps the entries and tries again.
    """
    now = rt.clock()
    entries = [Entry(*entry) for entry in entries]
    accepted, refused = _sort(rt, entries, now)
    # Its mail is held for this process's courier from the start: should the
    # process die, the hold lapses and another process sends it.
    held = (rt.claimant, now + CLAIM_LEASE)
    tally: Counter = Counter()
    gated: list[uuid.UUID] = []  # events some of whose mail the gate suppressed
    try:
        with rt.engine.begin() as conn:
            queued = _persist(conn, accepted, refused, now, held, tally, gated)
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: the bridge keeps the entries and tries again
    except Exception as exc:
        # Something in one entry the database (or the driver) will not take: the
        # batch is taken apart so that entry is dead-lettered alone.
        if len(entries) > 1:
            for entry in entries:
                accept_batch(rt, [entry])
            return
        event = accepted[0].event if accepted else None
        _refuse_unstorable(rt, entries[0].raw, event, exc)
        return
    _count(tally)
    for email_id, planned in queued:
        rt.dispatch.attempt(email_id, 0, planned)
    outcomes.suppressed_at_intake(rt, gated)


def _count(tally: Counter) -> None:
    """Count a batch's events and suppressed mail, once it is committed."""
    for (metric, *labels), n in tally.items():
        metric.labels(*labels).inc(n)


def _sort(rt: Runtime, entries: list[Entry], now: datetime):
    """Parse and plan each entry: (accepted, refused), duplicates in the batch dropped."""
    accepted: list[_Accepted] = []
    refused: list[_Refused] = []
    seen: set = set()
    for raw, rejected, asked_at in entries:
        try:
            if rejected:
                raise InvalidEvent(rejected)
            event = parse_event(raw)
        except InvalidEvent as exc:
            refused.append(_Refused(raw, Reason.INVALID_EVENT, str(exc)))
            continue
        if rt.apps.for_source(event.source) is None:
            error = f"source {event.source!r} is not a configured app and no default app is set"
            refused.append(_Refused(raw, Reason.UNKNOWN_SOURCE, error, event))
            continue
        if event.id in seen:
            log.info("event.duplicate", event_id=str(event.id), type=event.type)
            metrics.EVENTS_DUPLICATE.labels(event.type).inc()
            continue
        seen.add(event.id)
        try:
            asked_at = min(asked_at or now, now)
            plan = plan_event(event, asked_at, rt.policy)
        except Exception as exc:  # a bug this event meets: it must not hold up the stream
            error = f"could not be planned: {type(exc).__name__}: {exc}"
            refused.append(_Refused(raw, Reason.INVALID_EVENT, error, event))
            continue
        accepted.append(_Accepted(event, plan, asked_at))
    return accepted, refused


def _persist(
    conn: Connection, accepted, refused, now: datetime, held, tally: Counter, gated: list
) -> list[uuid.UUID]:
    """Write a batch; the emails to attempt once it is committed.  ``tally``
    gathers what to count once it is, ``gated`` the events to tell apps of."""
    new = ledger.record_events(
        conn, [a.event for a in accepted], [a.plan.outcome for a in accepted], now
    )
    fresh = [item for item in accepted if item.event.id in new]
    outbox.serialize_recipients(
        conn, {(i.event.source, spec.recipient) for i in fresh for spec in i.plan.emails}
    )
    queued_all = []
    deferred = _Deferred()
    for item in accepted:
        event = item.event
        if event.id not in new:
            # Its mail, if any, is held by whoever accepted it first, or due to
            # the sweeper should that process have died.
            log.info("event.duplicate", event_id=str(event.id), type=event.type)
            tally[metrics.EVENTS_DUPLICATE, event.type] += 1
            continue
        keys = _touches(event.source, item.plan)
        immediate = _claims_address(item.plan)
        if immediate or keys & deferred.keys:
            # What this plan reads (rate counts, the challenge it supersedes)
            # must already see the rows the batch has so far.
            deferred.flush(conn)
        outcome, queued, suppressed = apply_plan(
            conn,
            event.id,
            event.source,
            item.plan,
            now,
            defer=None if immediate else deferred,
            held=held,
            requested_at=item.asked_at,
        )
        deferred.keys |= keys
        if outcome != item.plan.outcome:
            ledger.set_outcome(conn, event.id, outcome)
        queued_all += queued
        tally[metrics.EVENTS_ACCEPTED, event.source, event.type] += 1
        for kind, _, reason in (entry.partition(":") for entry in suppressed):
            tally[metrics.EMAILS_SUPPRESSED, event.source, kind, reason] += 1
        if suppressed:
            gated.append(event.id)
        log.info(
            "event.accepted",
            event_id=str(event.id),
            type=event.type,
            source=event.source,
            outcome=outcome,
            emails=len(queued),
            suppressed=suppressed or None,
        )
    deferred.flush(conn)
    for item in refused:
        _file_refused(conn, item, now)
        tally[metrics.EVENTS_REFUSED, item.reason] += 1
    return queued_all


def _file_refused(conn: Connection, item: _Refused, now: datetime, attempts: int = 0) -> int:
    """Dead-letter an event, its raw content redacted; never retried."""
    failed_id = dead_letters.file_event(
        conn,
        redact(item.raw),
        reason=item.reason,
        error=item.error,
        now=now,
        event_id=item.event.id if item.event else None,
        event_type=item.event.type if item.event else None,
        attempts=attempts,
    )
    log.warning("event.refused", reason=item.reason, error=item.error, failed_id=failed_id)
    return failed_id


def _refuse_unstorable(rt: Runtime, raw: str, event, exc: Exception) -> None:
    # The driver's own message when there is one; else say what was raised.
    orig = getattr(exc, "orig", None)
    error = f"the database refused it: {orig or f'{type(exc).__name__}: {exc}'}"
    try:
        refuse_event(rt, raw, Reason.INVALID_EVENT, error, event)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        # Not even its raw content can be stored: the reason is, so it is not lost
        # silently and never holds up the stream.
        refuse_event(rt, "", Reason.INVALID_EVENT, f"{error} (its raw content could not be kept)")


def refuse_event(rt: Runtime, raw: str, reason: Reason, error: str, event=None, attempts=0) -> int:
    """Dead-letter an event at once (never retried), keeping its raw content redacted."""
    with rt.engine.begin() as conn:
        failed_id = _file_refused(conn, _Refused(raw, reason, error, event), rt.clock(), attempts)
    metrics.EVENTS_REFUSED.labels(reason).inc()
    return failed_id


class _Deferred:
    """Rows a batch inserts together at the end (or before a plan that must see them)."""

    def __init__(self) -> None:
        self.challenges: list[dict] = []
        self.emails: list[dict] = []
        #: What the deferred rows touch: recipients and challenge subjects.
        self.keys: set[tuple] = set()

    def flush(self, conn: Connection) -> None:
        challenges.insert_rows(conn, self.challenges)  # before the emails that refer to them
        outbox.insert_rows(conn, self.emails)
        self.challenges, self.emails, self.keys = [], [], set()


def _touches(app: str, plan: Plan) -> set[tuple]:
    keys = {("recipient", app, address_key(spec.recipient)) for spec in plan.emails}
    keys |= {
        ("subject", app, spec.challenge.purpose, challenges.subject_of(spec.challenge))
        for spec in plan.emails
        if spec.challenge is not None
    }
    return keys


def _claims_address(plan: Plan) -> bool:
    """An email change: it meets unique indexes, and may be refused half-way."""
    return plan.cancel_pending_change_of is not None or any(
        spec.challenge and spec.challenge.purpose == Purpose.EMAIL_CHANGE for spec in plan.emails
    )


#: The outcome of a plan refused because another user's change holds the address.
ADDRESS_CLAIMED = "refused:address_claimed"


def apply_plan(
    conn: Connection,
    event_id: uuid.UUID,
    app: str,
    plan: Plan,
    now: datetime,
    *,
    defer: _Deferred | None = None,
    held: tuple[str, datetime] | None = None,
    requested_at: datetime | None = None,
) -> tuple[str, list[tuple[uuid.UUID, Planned]], list[str]]:
    """Persist a plan: challenges opened, mail queued or suppressed by the gate.

    The caller holds the plan's recipients (``outbox.serialize_recipients``).

    Returns the event's outcome, the emails to send (``held``: by that claimant,
    see ``outbox.add_email``), each with what its first attempt needs to know
    (``delivery.Planned``), and what was suppressed.
    A plan refused half-way (another user's change holds the address) leaves
    nothing behind: its rows are rolled back to a savepoint, which only a plan
    that claims an address needs (and pays two round trips for).
    """
    if not _claims_address(plan):
        return _apply(conn, event_id, app, plan, now, defer, held, requested_at)
    with conn.begin_nested() as savepoint:
        result = _apply(conn, event_id, app, plan, now, None, held, requested_at)
        if result[0] == ADDRESS_CLAIMED:
            savepoint.rollback()
        return result


def _apply(
    conn: Connection, event_id, app: str, plan: Plan, now: datetime, defer, held, requested_at
):
    if plan.cancel_pending_change_of:
        challenges.revoke_user(conn, app, plan.cancel_pending_change_of, Purpose.EMAIL_CHANGE, now)
    queued, suppressed = [], []
    # With ``defer``, new rows wait in it for the batch's end.
    rows, emails = (defer.challenges, defer.emails) if defer is not None else (None, None)
    for spec in plan.emails:
        facts = outbox.send_facts(conn, app, spec, now - RATE_LIMIT_WINDOW, now)
        reason = gate(spec, facts)
        if reason is not None:
            outbox.add_email(
                conn, event_id, app, spec, now, suppressed=reason, defer=emails,
                requested_at=requested_at,
            )  # fmt: skip
            suppressed.append(f"{spec.kind}:{reason}")
            continue
        challenge_id = None
        if spec.challenge is not None:
            challenge_id = challenges.open_challenge(
                conn, app, event_id, spec.challenge, now, defer=rows
            )
            if challenge_id is None:
                return ADDRESS_CLAIMED, [], []
        email_id = outbox.add_email(
            conn, event_id, app, spec, now, challenge_id=challenge_id, defer=emails, held=held,
            requested_at=requested_at,
        )  # fmt: skip
        queued.append((email_id, Planned(challenge_id, app, spec.kind, spec.recipient)))
    if suppressed and not queued:
        return f"suppressed:{suppressed[0].partition(':')[2]}", [], suppressed
    return plan.outcome, queued, suppressed
