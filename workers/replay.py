"""Use case: replay a dead letter: an email is queued anew (its challenge gets a
new secret when it is sent); an event that never became mail is published again."""

from dataclasses import dataclass

import redis

from domain.vocabulary import DeadLetterStatus
from workers.ingress import publish_raw
from workers.runtime import Runtime
from workers.store import dead_letters


@dataclass(frozen=True)
class Replayed:
    """One row's result: ``error`` set, or what was (or would be) replayed."""

    id: int
    error: str | None = None
    #: ``email`` or ``event``.
    target: str | None = None
    new_email_id: str | None = None
    dry_run: bool = False
    reason: str | None = None

    def as_dict(self) -> dict:
        if self.error:
            return {"id": self.id, "error": self.error}
        if self.dry_run:
            return {"id": self.id, "would_replay": self.target, "reason": self.reason}
        if self.new_email_id:
            return {"id": self.id, "replayed": "email", "new_email_id": self.new_email_id}
        return {"id": self.id, "replayed": "event"}


def replay(rt: Runtime, client: redis.Redis, failed_id: int, *, dry_run: bool) -> Replayed:
    now = rt.clock()
    with rt.engine.begin() as conn:
        row = dead_letters.get(conn, failed_id)
        if row is None:
            return Replayed(failed_id, error=f"no dead letter with id {failed_id}")
        if row.status != DeadLetterStatus.DEAD:
            return Replayed(failed_id, error=f"dead letter {failed_id} is already {row.status}")
        target = "email" if row.email_id else "event"
        if dry_run:
            return Replayed(failed_id, target=target, dry_run=True, reason=row.reason)
        if row.email_id is None:
            if row.payload is None or not dead_letters.mark_event_replayed(conn, failed_id, now):
                return Replayed(failed_id, error=f"dead letter {failed_id} cannot be replayed")
            # Inside the transaction: if Redis refuses, the row stays dead.
            publish_raw(client, row.payload)
            return Replayed(failed_id, target=target)
        new_email_id = dead_letters.replay_email(conn, row, now)
        if new_email_id is None:
            return Replayed(failed_id, error=f"dead letter {failed_id} was replayed already")
    rt.dispatch.delivery(new_email_id)
    return Replayed(failed_id, target=target, new_email_id=str(new_email_id))
