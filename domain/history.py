"""An email's history, told from the facts its outbox row and dead letter keep.

No table records each step: a row per attempt would cost the hot path one more
write per attempt, for a question support asks a few times a day.  The row
keeps when the mail was asked for, queued and sent, how many attempts began and
the last error; its dead letter keeps when it was filed and what an admin made
of it.  When each earlier attempt ran is not kept, and the history says so
(``at`` is None) rather than invent a time.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.vocabulary import DeadLetterStatus, EmailStatus


class Happened(StrEnum):
    """One step of an email's life."""

    #: The app published the event that asked for it (its stream entry).
    REQUESTED = "requested"
    #: Written to the outbox, waiting for a worker.
    QUEUED = "queued"
    #: Deliberately not sent (at intake, or when its attempt began).
    SUPPRESSED = "suppressed"
    #: Attempts failed for now; another is due.
    RETRYING = "retrying"
    #: A worker holds it for an attempt.
    SENDING = "sending"
    #: A relay or provider accepted it.
    SENT = "sent"
    #: Given up on, and filed as a dead letter.
    DEAD_LETTERED = "dead_lettered"
    #: Given up on, and its dead letter is gone (purged).
    FAILED = "failed"
    #: An admin queued a fresh copy of it.
    REPLAYED = "replayed"
    #: An admin marked its dead letter as dealt with.
    DISCARDED = "discarded"
    #: A provider or a returned report said what became of it after it was sent
    #: (``detail``: bounced, soft_bounced, complained or delivered, and its words).
    REPORTED = "reported"


@dataclass(frozen=True)
class Step:
    happened: Happened
    #: When, or None when the row does not say.
    at: datetime | None
    detail: str | None = None


class EmailFacts(Protocol):
    """What the history reads: an ``emails`` row joined to its dead letter
    (``dead_letter_*``, None when it has none) and that letter's replay."""

    status: str
    suppressed_reason: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    claimed_by: str | None
    lease_until: datetime | None
    transport: str | None
    provider_id: str | None
    replay_of: int | None
    requested_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    feedback: str | None
    feedback_at: datetime | None
    feedback_detail: str | None
    dead_letter_id: int | None
    dead_letter_reason: str | None
    dead_letter_error: str | None
    dead_letter_status: str | None
    dead_lettered_at: datetime | None
    replayed_as: object | None
    replayed_at: datetime | None
    discarded_at: datetime | None
    #: The status of the replay's email, None once that email is purged.
    replay_status: str | None
    replay_suppressed: str | None


def history(email: EmailFacts, now: datetime) -> list[Step]:
    """The steps, oldest first."""
    steps = []
    if email.requested_at is not None:  # unset on rows older than migration 0005
        steps.append(Step(Happened.REQUESTED, email.requested_at))
    steps.append(_written(email))
    steps.extend(_under_way(email, now))
    steps.extend(_ending(email))
    return steps


def status_text(status: str, suppressed_reason: str | None) -> str:
    """``sent``, or ``suppressed (rate_limited)``: a status with its why."""
    return f"{status} ({suppressed_reason})" if suppressed_reason else status


def _written(email: EmailFacts) -> Step:
    if email.status == EmailStatus.SUPPRESSED and email.attempts == 0:
        # Refused at intake (rate limit, locked address): it never queued.
        return Step(Happened.SUPPRESSED, email.created_at, email.suppressed_reason)
    notes = []
    if email.replay_of is not None:
        notes.append(f"a replay of dead letter #{email.replay_of}")
    unattempted = email.status == EmailStatus.QUEUED and email.attempts == 0
    if unattempted and email.next_attempt_at > email.created_at:  # a paced replay
        notes.append(f"due at {_clock(email.next_attempt_at)}")
    return Step(Happened.QUEUED, email.created_at, "; ".join(notes) or None)


def _under_way(email: EmailFacts, now: datetime) -> list[Step]:
    if email.status == EmailStatus.SENDING:
        detail = f"attempt {email.attempts} by {email.claimed_by}"
        if email.lease_until and email.lease_until < now:
            detail += "; its worker stopped renewing the claim: a sweep takes it over"
        return [Step(Happened.SENDING, None, detail)]
    if email.status != EmailStatus.QUEUED or email.attempts == 0:
        return []
    due = _clock(email.next_attempt_at)
    if email.last_error is None:
        # Handed back unsent: its worker stopped, or hit an unexpected error.
        detail = f"{_attempts(email.attempts)} handed back unsent; next due at {due}"
    else:
        detail = f"{_attempts(email.attempts)} failed, the last: {email.last_error}; "
        detail += f"next due at {due}"
    return [Step(Happened.RETRYING, None, detail)]


def _ending(email: EmailFacts) -> list[Step]:
    if email.status == EmailStatus.SENT:
        detail = f"attempt {email.attempts}, via {email.transport}"
        if email.provider_id:
            detail += f", provider id {email.provider_id}"
        steps = [Step(Happened.SENT, email.sent_at, detail)]
        if email.feedback is not None:
            said = email.feedback
            if email.feedback_detail:
                said += f": {email.feedback_detail}"
            steps.append(Step(Happened.REPORTED, email.feedback_at, said))
        return steps
    if email.status == EmailStatus.SUPPRESSED and email.attempts > 0:
        # Decided as its attempt began; the row keeps no time for it.
        return [Step(Happened.SUPPRESSED, None, email.suppressed_reason)]
    if email.status != EmailStatus.FAILED:
        return []
    if email.dead_letter_id is None:
        return [Step(Happened.FAILED, None, email.last_error)]
    detail = f"#{email.dead_letter_id} {email.dead_letter_reason}"
    if email.attempts:  # none when it was refused before sending (expired, render error)
        detail += f" after {_attempts(email.attempts)}"
    detail += f": {email.dead_letter_error}"
    steps = [Step(Happened.DEAD_LETTERED, email.dead_lettered_at, detail)]
    if email.dead_letter_status == DeadLetterStatus.REPLAYED:
        steps.append(Step(Happened.REPLAYED, email.replayed_at, _replay(email)))
    elif email.dead_letter_status == DeadLetterStatus.DISCARDED:
        steps.append(Step(Happened.DISCARDED, email.discarded_at))
    return steps


def _replay(email: EmailFacts) -> str:
    if email.replay_status is None:
        return f"as email {email.replayed_as} (since purged)"
    outcome = status_text(email.replay_status, email.replay_suppressed)
    return f"as email {email.replayed_as} ({outcome})"


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _clock(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")
