"""Replaying dead letters: a new mail with a new secret, once; a dry run changes nothing."""

import json
from email import message_from_bytes, policy

import pytest

from domain.apps import Directory
from domain.errors import PermanentError, VerificationFailed
from domain.messages import as_bytes
from tests.conftest import make_event
from tests.mail import code_in
from tests.unit.conftest import RecordingTransport
from workers import intake
from workers.replay import replay
from workers.store import dead_letters
from workers.store.tables import Challenge, Email, FailedEmail
from workers.verification import Verifier


class RejectingFirst(RecordingTransport):
    """Refuses the first message for good, but keeps it: what the user would
    have got had it gone out."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = []

    def send(self, message, *, sender, recipient, return_path=None):
        if not self.refused:
            self.attempts += 1
            self.refused.append(message_from_bytes(as_bytes(message), policy=policy.default))
            raise PermanentError("SMTP 550 5.7.1 rejected for now")
        return super().send(message, sender=sender, recipient=recipient)


def without_age(record: dict) -> dict:
    """A result as compared here: its age depends on how fast the test ran."""
    assert record["age_seconds"] < 60
    return {key: value for key, value in record.items() if key != "age_seconds"}


@pytest.fixture
def rejected(unit):
    """A signup whose mail was rejected: its dead letter."""
    unit.rt.transport = RejectingFirst()
    intake.accept_event(unit.rt, json.dumps(make_event()))
    unit.drain()
    [failed] = unit.rows(FailedEmail)
    assert (failed.reason, failed.status) == ("rejected", "dead")
    return failed


def test_a_replayed_rejection_is_mailed_with_a_new_code(unit, rejected):
    transport = unit.rt.transport
    old_code = code_in(transport.refused[0])

    # A 550 is left alone unless forced (the address said no).
    assert replay(unit.rt, None, rejected.id, dry_run=False).skipped == "rejected"
    result = replay(unit.rt, None, rejected.id, dry_run=False, force=True)
    assert result.error is None
    assert without_age(result.as_dict()) == {
        "id": rejected.id,
        "target": "email",
        "kind": "signup",
        "reason": "rejected",
        "replayed": "email",
        "new_email_id": result.new_email_id,
        "via": "broker",
    }
    unit.drain()

    [message] = transport.sent
    assert message["To"] == "ada@example.com"
    new_code = code_in(message)
    assert new_code != old_code
    [failed] = unit.rows(FailedEmail)
    assert failed.status == "replayed" and str(failed.replayed_email_id) == result.new_email_id
    assert failed.replayed_at is not None
    original, copy = sorted(unit.rows(Email), key=lambda e: e.created_at)
    assert (original.status, copy.status) == ("failed", "sent")
    assert copy.replay_of == rejected.id and copy.challenge_id == original.challenge_id
    assert str(copy.id) == result.new_email_id

    # Only the code that went out verifies.
    verifier = Verifier(unit.rt)
    with pytest.raises(VerificationFailed) as caught:
        verifier.verify_code("notes", "signup", "ada@example.com", old_code)
    assert caught.value.code == "invalid"
    assert verifier.verify_code("notes", "signup", "ada@example.com", new_code)


def test_a_dead_letter_is_replayed_once(unit, rejected):
    first = replay(unit.rt, None, rejected.id, dry_run=False, force=True)
    second = replay(unit.rt, None, rejected.id, dry_run=False, force=True)

    assert first.error is None
    assert second.error == f"dead letter {rejected.id} is already replayed"
    assert second.as_dict() == {"id": rejected.id, "error": second.error, "unreachable": False}
    unit.drain()
    assert len(unit.rt.transport.sent) == 1
    assert len(unit.rows(Email)) == 2


def test_a_dry_run_changes_nothing(unit, rejected):
    result = replay(unit.rt, None, rejected.id, dry_run=True, force=True)

    assert without_age(result.as_dict()) == {
        "id": rejected.id,
        "target": "email",
        "kind": "signup",
        "reason": "rejected",
        "would_replay": "email",
    }
    unit.drain()
    assert unit.rt.transport.sent == []
    [failed] = unit.rows(FailedEmail)
    assert (failed.status, failed.replayed_at, failed.replayed_email_id) == ("dead", None, None)
    assert len(unit.rows(Email)) == 1
    # The real replay still works afterwards.
    assert replay(unit.rt, None, rejected.id, dry_run=False, force=True).new_email_id


def test_a_discarded_dead_letter_is_not_replayed(unit, rejected):
    with unit.rt.engine.begin() as conn:
        assert dead_letters.discard(conn, rejected.id, unit.rt.clock())
    result = replay(unit.rt, None, rejected.id, dry_run=False, force=True)
    assert result.error == f"dead letter {rejected.id} is already discarded"
    unit.drain()
    assert unit.rt.transport.sent == [] and len(unit.rows(Email)) == 1


def test_an_unknown_dead_letter_is_an_error(unit):
    assert replay(unit.rt, None, 999, dry_run=False).error == "no dead letter with id 999"


def test_a_replayed_mail_whose_challenge_was_used_meanwhile_is_not_sent(unit, rejected):
    # The user asked again and verified the newer code before the replay.
    unit.rt.transport = RecordingTransport()
    intake.accept_event(unit.rt, json.dumps(make_event()))
    unit.drain()
    Verifier(unit.rt).verify_code(
        "notes", "signup", "ada@example.com", code_in(unit.rt.transport.sent[0])
    )

    result = replay(unit.rt, None, rejected.id, dry_run=False, force=True)
    unit.drain()
    assert len(unit.rt.transport.sent) == 1
    [copy] = unit.rows(Email, Email.replay_of == rejected.id)
    assert (copy.status, copy.suppressed_reason) == ("suppressed", "superseded")
    assert str(copy.id) == result.new_email_id
    assert sum(c.consumed_at is not None for c in unit.rows(Challenge)) == 1


class FakeStream:
    """Stands in for Redis: keeps what is appended to the events stream."""

    def __init__(self, fail: bool = False) -> None:
        self.entries = []
        self.fail = fail

    def xadd(self, stream, fields):
        if self.fail:
            raise ConnectionError("redis is down")
        self.entries.append((stream, fields))
        return "1-0"


def refused_event(unit) -> FailedEmail:
    unit.rt.apps = Directory(apps={}, default=None)
    intake.accept_event(unit.rt, json.dumps(make_event(source="elsewhere")))
    [failed] = unit.rows(FailedEmail)
    assert failed.reason == "unknown_source"
    return failed


def test_a_refused_event_is_published_again_once(unit):
    failed = refused_event(unit)
    stream = FakeStream()

    assert without_age(replay(unit.rt, stream, failed.id, dry_run=False).as_dict()) == {
        "id": failed.id,
        "target": "event",
        "kind": "signup",  # read from the payload's type
        "reason": "unknown_source",
        "replayed": "event",
    }
    [(name, fields)] = stream.entries
    assert name == "mailroom:events" and fields == {"event": failed.payload}
    assert unit.rows(FailedEmail)[0].status == "replayed"
    again = replay(unit.rt, stream, failed.id, dry_run=False)
    assert again.error == f"dead letter {failed.id} is already replayed"
    assert len(stream.entries) == 1


def test_an_event_replay_redis_refuses_leaves_the_dead_letter_dead(unit):
    failed = refused_event(unit)
    result = replay(unit.rt, FakeStream(fail=True), failed.id, dry_run=False)
    assert result.unreachable and result.new_email_id is None
    assert result.error == (
        f"cannot reach Redis: redis is down; dead letter {failed.id} stays dead"
    )
    [row] = unit.rows(FailedEmail)
    assert (row.status, row.replayed_at) == ("dead", None)
