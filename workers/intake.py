"""Use case: accept one event: validate, deduplicate, plan, persist, queue its mail."""

import uuid
from datetime import datetime

from sqlalchemy import Connection

from domain.addresses import address_key
from domain.errors import InvalidEvent
from domain.events import parse_event, redact
from domain.flows import Plan, SendFacts, gate, plan_event
from domain.policy import RATE_LIMIT_WINDOW
from domain.vocabulary import Purpose, Reason
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.store import challenges, dead_letters, guards, ledger, outbox

log = get_logger("mailroom.pipeline")


def accept_event(rt: Runtime, raw: str, *, rejected: str | None = None) -> None:
    """Validate, deduplicate, plan and persist one event; then queue its mail.

    ``rejected`` is set by the ingress bridge when the entry could not even be
    read as text; such an event is dead-lettered like any invalid one.
    """
    now = rt.clock()
    try:
        if rejected:
            raise InvalidEvent(rejected)
        event = parse_event(raw)
    except InvalidEvent as exc:
        refuse_event(rt, raw, Reason.INVALID_EVENT, str(exc))
        return
    if rt.apps.for_source(event.source) is None:
        error = f"source {event.source!r} is not a configured app and no default app is set"
        refuse_event(rt, raw, Reason.UNKNOWN_SOURCE, error, event)
        return

    plan = plan_event(event, now, rt.policy)
    with rt.engine.begin() as conn:
        if not ledger.record_event(conn, event, plan.outcome, now):
            log.info("event.duplicate", event_id=str(event.id), type=event.type)
            return
        outcome, queued, suppressed = apply_plan(conn, event.id, event.source, plan, now)
        if outcome != plan.outcome:
            ledger.set_outcome(conn, event.id, outcome)
    # After commit: a crash before these sends is recovered by the sweeper.
    for email_id in queued:
        rt.dispatch.delivery(email_id)
    log.info(
        "event.accepted",
        event_id=str(event.id),
        type=event.type,
        source=event.source,
        outcome=outcome,
        emails=len(queued),
        suppressed=suppressed or None,
    )


def refuse_event(rt: Runtime, raw: str, reason: Reason, error: str, event=None, attempts=0) -> int:
    """Dead-letter an event at once (never retried), keeping its raw content redacted."""
    with rt.engine.begin() as conn:
        failed_id = dead_letters.file_event(
            conn,
            redact(raw),
            reason=reason,
            error=error,
            now=rt.clock(),
            event_id=event.id if event else None,
            event_type=event.type if event else None,
            attempts=attempts,
        )
    log.warning("event.refused", reason=reason, error=error, failed_id=failed_id)
    return failed_id


def _send_facts(conn: Connection, app: str, spec, now: datetime) -> SendFacts:
    locked = spec.challenge is not None and guards.is_locked(
        conn, app, spec.challenge.purpose, address_key(spec.challenge.target), now
    )
    return SendFacts(
        recent_sends=outbox.recent_sends(conn, app, spec, now - RATE_LIMIT_WINDOW),
        address_locked=locked,
    )


def apply_plan(
    conn: Connection, event_id: uuid.UUID, app: str, plan: Plan, now: datetime
) -> tuple[str, list[uuid.UUID], list[str]]:
    """Persist a plan: challenges opened, mail queued or suppressed by the gate.

    Returns the event's outcome, the emails to enqueue and what was suppressed.
    A plan refused half-way (another user's change holds the address) leaves
    nothing behind: its rows are rolled back to a savepoint.
    """
    with conn.begin_nested() as savepoint:
        if plan.cancel_pending_change_of:
            challenges.revoke_user(
                conn, app, plan.cancel_pending_change_of, Purpose.EMAIL_CHANGE, now
            )
        queued, suppressed = [], []
        for spec in plan.emails:
            outbox.serialize_recipient(conn, app, spec.recipient)
            reason = gate(spec, _send_facts(conn, app, spec, now))
            if reason is not None:
                outbox.add_email(conn, event_id, app, spec, now, suppressed=reason)
                suppressed.append(f"{spec.kind}:{reason}")
                continue
            challenge_id = None
            if spec.challenge is not None:
                challenge_id = challenges.open_challenge(conn, app, event_id, spec.challenge, now)
                if challenge_id is None:
                    # Another user's live change holds the address: nothing is sent.
                    savepoint.rollback()
                    return "refused:address_claimed", [], []
            queued.append(
                outbox.add_email(conn, event_id, app, spec, now, challenge_id=challenge_id)
            )
    if suppressed and not queued:
        return f"suppressed:{suppressed[0].partition(':')[2]}", [], suppressed
    return plan.outcome, queued, suppressed
