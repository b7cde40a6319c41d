"""Use case: replay a dead letter: an email is queued anew (its challenge gets a
new secret when it is sent); an event that never became mail is published again.

An email replay needs the database only: its new row is committed ``queued``
and due, so the workers' sweeper sends it even when its broker message is lost
(Redis down); the broker only makes it sooner.  An event replay needs Redis (the
event goes back into the stream): if Redis refuses, the row stays dead.

Unless forced, a replay leaves alone what it should not send (``domain.replays``):
a request too old for its user to still be waiting, an address that refused the
mail for good, a recipient at the rate limit or cooling down.
"""

import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import redis

from domain.addresses import address_key
from domain.flows import ChallengeSpec, EmailSpec, gate
from domain.policy import RATE_LIMIT_WINDOW
from domain.replays import ReplayLimits, delivery_window, kind_of, skip_reason
from domain.vocabulary import DeadLetterStatus, Purpose
from workers.ingress import publish_raw
from workers.redisconn import connect
from workers.runtime import Runtime
from workers.store import dead_letter_views, dead_letters, outbox

#: Seconds an event replay waits on Redis before calling it unreachable.
REDIS_TIMEOUT = 5.0


@dataclass(frozen=True)
class Replayed:
    """One row's result: ``error`` set, skipped (and why), or what was (or
    would be) replayed."""

    id: int
    error: str | None = None
    #: ``email`` or ``event``.
    target: str | None = None
    new_email_id: str | None = None
    dry_run: bool = False
    #: The dead letter's reason.
    reason: str | None = None
    #: Why it was left alone (``domain.replays.Skip``), unless forced.
    skipped: str | None = None
    kind: str | None = None
    #: How long ago the user asked.
    age: timedelta | None = None
    #: An email replay: the broker took it (False: the sweeper sends it).
    handed_on: bool | None = None
    #: An event replay Redis refused (the row stays dead).
    unreachable: bool = False

    def as_dict(self) -> dict:
        if self.error:
            return {"id": self.id, "error": self.error, "unreachable": self.unreachable}
        facts = {
            "id": self.id,
            "target": self.target,
            "kind": self.kind,
            "reason": self.reason,
            "age_seconds": int(self.age.total_seconds()) if self.age is not None else None,
        }
        if self.skipped:
            return {**facts, "skipped": self.skipped}
        if self.dry_run:
            return {**facts, "would_replay": self.target}
        if self.new_email_id:
            via = "broker" if self.handed_on else "sweeper"
            return {**facts, "replayed": "email", "new_email_id": self.new_email_id, "via": via}
        return {**facts, "replayed": "event"}


class LazyRedis:
    """A Redis client made on first use, so replaying emails never needs Redis;
    after one failure it fails at once (one unreachable Redis, one wait)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: redis.Redis | None = None
        self.down: redis.RedisError | None = None

    def xadd(self, stream, fields):
        if self.down is not None:
            raise self.down
        if self.client is None:
            self.client = connect(
                self.url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
        try:
            return self.client.xadd(stream, fields)
        except redis.RedisError as exc:
            self.down = exc
            raise

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def limits_for(rt: Runtime) -> ReplayLimits:
    return ReplayLimits(
        codes=timedelta(minutes=rt.settings.replay_code_max_age),
        notices=timedelta(hours=rt.settings.replay_notice_max_age),
    )


def _payload_type(payload: str | None) -> str | None:
    """The type a raw event says it is, if it can be read at all."""
    try:
        value = json.loads(payload or "")
    except ValueError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def _planned_key(row) -> tuple:
    return (row.app, address_key(row.recipient), row.kind)


def _gate(conn, row, now: datetime, planned: Counter | None) -> str | None:
    """What the send gate says of one more mail of this kind to this recipient
    now, counting what this run plans to send (a dry run writes nothing)."""
    if row.email_id is None or row.recipient is None or row.app is None:
        return None
    challenge = None
    if row.challenge_id is not None:
        challenge = ChallengeSpec(purpose=Purpose(row.kind), email=row.recipient)
    spec = EmailSpec(row.kind, row.recipient, "", now, {}, challenge=challenge)
    facts = outbox.send_facts(conn, row.app, spec, now - RATE_LIMIT_WINDOW, now)
    extra = planned[_planned_key(row)] if planned is not None else 0
    return gate(spec, replace(facts, recent_sends=facts.recent_sends + extra))


def replay(
    rt: Runtime,
    client,
    failed_id: int,
    *,
    dry_run: bool,
    force: bool = False,
    due: datetime | None = None,
    planned: Counter | None = None,
    use_broker: bool = True,
) -> Replayed:
    """Replay one dead letter (``client``: where events are published again).

    ``due``: when its email may be sent (a paced replay); ``planned``: the
    mails a dry run would already have sent, per recipient and kind;
    ``use_broker=False``: leave the email to the sweeper (the broker is down).
    """
    now = rt.clock()
    try:
        return _replay(rt, client, failed_id, now, dry_run, force, due, planned, use_broker)
    except (redis.RedisError, ConnectionError) as exc:
        # Raised inside the transaction: the row was rolled back to dead.
        error = f"cannot reach Redis: {exc}; dead letter {failed_id} stays dead"
        return Replayed(failed_id, error=error, target="event", unreachable=True)


def _replay(rt, client, failed_id, now, dry_run, force, due, planned, use_broker) -> Replayed:
    with rt.engine.begin() as conn:
        row = dead_letter_views.one(conn, failed_id)
        if row is None:
            return Replayed(failed_id, error=f"no dead letter with id {failed_id}")
        if row.status != DeadLetterStatus.DEAD:
            return Replayed(failed_id, error=f"dead letter {failed_id} is already {row.status}")
        kind = kind_of(row.kind, row.event_type or _payload_type(row.payload))
        age = now - row.requested_at
        target = "email" if row.email_id else "event"
        facts = {"target": target, "reason": row.reason, "kind": kind, "age": age}
        if not force:
            skip = skip_reason(
                kind=kind,
                reason=row.reason,
                age=age,
                limits=limits_for(rt),
                gate_says=_gate(conn, row, now, planned),
            )
            if skip:
                return Replayed(failed_id, skipped=skip, dry_run=dry_run, **facts)
        if dry_run:
            if planned is not None and row.email_id:
                planned[_planned_key(row)] += 1
            return Replayed(failed_id, dry_run=True, **facts)
        if row.email_id is None:
            if row.payload is None or not dead_letters.mark_event_replayed(conn, failed_id, now):
                return Replayed(failed_id, error=f"dead letter {failed_id} cannot be replayed")
            # Inside the transaction: if Redis refuses, the row stays dead.
            publish_raw(client, row.payload)
            return Replayed(failed_id, **facts)
        window = delivery_window(row.kind, rt.policy)
        new_email_id = dead_letters.replay_email(conn, row, now, due, window)
        if new_email_id is None:
            return Replayed(failed_id, error=f"dead letter {failed_id} was replayed already")
    # Committed queued and due: from here the outbox guarantees it is sent.
    handed_on = False
    if use_broker:
        delay_ms = int((due - now).total_seconds() * 1000) if due and due > now else None
        handed_on = rt.dispatch.delivery(new_email_id, delay_ms=delay_ms)
    return Replayed(failed_id, new_email_id=str(new_email_id), handed_on=handed_on, **facts)
