"""Suppression for real: reports recorded through `workers.feedback.record` (what every
intake calls), the policy they earn, mail not sent to a suppressed address, `undeliverable`
at verification and in an event's fate, and `mailroom suppression list|add|remove`."""

import json
import uuid

import pytest

from domain import verp
from domain.errors import VerificationFailed
from domain.feedback import Report, Source
from domain.vocabulary import Feedback, Verdict
from tests.commands import run
from tests.conftest import make_event, reset
from tests.mail import code_in
from tests.servers import wait_until
from workers import feedback
from workers.store.tables import Email, EventRow, SuppressionRow
from workers.verification import Verifier

STREAM = "mailroom:outcomes"
BOUNCE_DOMAIN = "bounces.notes.example"


@pytest.fixture
def mailroom(make_mailroom):
    return make_mailroom(MAILROOM_BOUNCE_DOMAIN=BOUNCE_DOMAIN, MAILROOM_SOFT_BOUNCE_LIMIT="2")


def send(mailroom, event: dict) -> Email:
    mailroom.publish(event)
    return wait_until(
        lambda: next(
            (e for e in mailroom.rows(Email, Email.event_id == uuid.UUID(event["id"]))
             if e.status in ("sent", "suppressed")),
            None,
        ),
        20,
        what=f"the mail of {event['type']}",
    )  # fmt: skip


def outcomes(mailroom, email: Email) -> list[tuple[str, str | None]]:
    records = [json.loads(fields[b"outcome"]) for _, fields in mailroom.redis.xrange(STREAM)]
    return [(r["status"], r["reason"]) for r in records if r["email_id"] == str(email.id)]


def suppressions(mailroom) -> dict[tuple[str, str], str]:
    return {(r.address_key, r.scope): r.reason for r in mailroom.rows(SuppressionRow)}


def bounce(email: Email, kind=Feedback.BOUNCED, **fields) -> Report:
    return Report(kind, Source.DSN, email_id=email.id, detail="5.1.1 user unknown", **fields)


def test_a_hard_bounce_suppresses_the_address_for_every_app(mailroom, smtp_sink):
    first = send(mailroom, make_event(data={"email": "Ada@Example.com"}))
    [message] = smtp_sink.wait_for(1)
    # The return path names this mail, under a key only mailroom holds.
    keys = [verp.key_for(pepper) for pepper in mailroom.rt.peppers.values()]
    assert verp.email_id_of(message.envelope_from, keys, BOUNCE_DOMAIN) == first.id

    recorded = feedback.record(mailroom.rt, bounce(first, reason="permanent"))
    assert recorded.fresh and recorded.suppression.scope == "*"
    assert suppressions(mailroom) == {("ada@example.com", "*"): "bounced"}
    [row] = mailroom.rows(Email, Email.id == first.id)
    assert (row.feedback, row.feedback_detail) == ("bounced", "5.1.1 user unknown")
    wait_until(lambda: ("bounced", "permanent") in outcomes(mailroom, first), 5, what="outcome")

    # Said twice, it changes nothing and is told once.
    assert not feedback.record(mailroom.rt, bounce(first, reason="permanent")).fresh
    assert outcomes(mailroom, first).count(("bounced", "permanent")) == 1

    # The code of the bounced mail cannot have been read: the app hears so.
    with pytest.raises(VerificationFailed) as failed:
        Verifier(mailroom.rt).verify_code("notes", "signup", "ada@example.com", "000000")
    assert failed.value.code == Verdict.UNDELIVERABLE

    # Nothing more goes to it, from any app.
    other = make_event(data={"email": "ada@example.com"}, source="other")
    later = send(mailroom, other)
    assert (later.status, later.suppressed_reason, later.attempts) == ("suppressed", "bounced", 0)
    [event] = mailroom.rows(EventRow, EventRow.id == uuid.UUID(other["id"]))
    assert event.outcome == "suppressed:bounced"
    wait_until(lambda: outcomes(mailroom, later) == [("suppressed", "bounced")], 5, what="told")
    assert len(smtp_sink.messages) == 1


def test_a_complaint_stops_that_apps_mail_but_not_a_reset_or_another_app(mailroom, smtp_sink):
    first = send(mailroom, make_event(data={"email": "bob@example.com"}))
    smtp_sink.wait_for(1)
    report = Report(
        Feedback.COMPLAINED, Source.ARF, email_id=first.id, recipient="BOB@example.com",
        reason="abuse",
    )  # fmt: skip
    assert feedback.record(mailroom.rt, report).suppression.scope == "notes"

    login = send(
        mailroom, make_event("login.code_requested", {"email": "bob@example.com", "user_id": "u2"})
    )
    assert (login.status, login.suppressed_reason) == ("suppressed", "complained")
    # The owner asked for this one, now: it goes.
    asked = send(mailroom, reset(email="bob@example.com"))
    assert asked.status == "sent"
    other = send(mailroom, make_event(data={"email": "bob@example.com"}, source="other"))
    assert other.status == "sent"
    assert len(smtp_sink.wait_for(3)) == 3


def test_soft_bounces_suppress_only_in_a_row(mailroom, smtp_sink):
    mails = [send(mailroom, make_event(data={"email": "cy@example.com"}, source=f"a{n}"))
             for n in range(3)]  # fmt: skip
    soft = Feedback.SOFT_BOUNCED
    assert feedback.record(mailroom.rt, bounce(mails[0], soft)).suppression is None
    feedback.record(mailroom.rt, Report(Feedback.DELIVERED, Source.DSN, email_id=mails[1].id))
    # A delivery between: the streak starts again.
    assert feedback.record(mailroom.rt, bounce(mails[2], soft)).suppression is None
    fourth = send(mailroom, make_event(data={"email": "cy@example.com"}, source="a3"))
    assert feedback.record(mailroom.rt, bounce(fourth, soft)).suppression.reason == "bounced"
    assert suppressions(mailroom) == {("cy@example.com", "*"): "bounced"}


def test_a_report_naming_another_address_or_no_mail_of_ours_is_not_believed(mailroom, smtp_sink):
    sent = send(mailroom, make_event(data={"email": "dee@example.com"}))
    stranger = Report(Feedback.BOUNCED, Source.DSN, email_id=sent.id, recipient="eve@example.com")
    assert feedback.record(mailroom.rt, stranger) is None
    unknown = Report(Feedback.BOUNCED, Source.SES, provider_id="0100-not-ours")
    assert feedback.record(mailroom.rt, unknown) is None
    assert suppressions(mailroom) == {}
    assert "feedback.unmatched" in mailroom.log.getvalue()


def test_the_cli_adds_lists_and_lifts_suppressions(mailroom, smtp_sink, env):
    added = run(env, "suppression", "add", "Fay@Example.com", "--note", "asked us", "--json")
    assert added.returncode == 0, added.stderr
    shown = json.loads(added.stdout)
    fields = ("address", "app", "reason", "source", "detail", "expires_at")
    assert {k: shown[k] for k in fields} == {
        "address": "fay@example.com", "app": "*", "reason": "manual", "source": "admin",
        "detail": "asked us", "expires_at": None,
    }  # fmt: skip

    blocked = send(mailroom, make_event(data={"email": "fay@example.com"}))
    assert (blocked.status, blocked.suppressed_reason) == ("suppressed", "manual")

    listed = run(env, "suppression", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == [
        "ADDRESS", "APP", "REASON", "SOURCE", "SINCE", "UNTIL"
    ]  # fmt: skip
    assert "fay@example.com  *    manual  admin" in listed.stdout

    bad = run(env, "suppression", "add", "not an address")
    assert bad.returncode == 2 and "Invalid value for 'ADDRESS'" in bad.stderr

    lifted = run(env, "suppression", "remove", "fay@example.com")
    assert (lifted.returncode, lifted.stdout) == (0, "fay@example.com: 1 suppression lifted\n")
    again = run(env, "suppression", "remove", "fay@example.com")
    assert again.returncode == 1
    assert again.stderr.strip() == "Error: fay@example.com is not suppressed"

    freed = send(mailroom, make_event(data={"email": "fay@example.com"}))
    assert freed.status == "sent"
    assert code_in(smtp_sink.wait_for(1)[0])


def test_later_reports_never_undo_a_final_one_nor_an_admins_suppression(mailroom, smtp_sink):
    from domain.suppression import ALL_APPS, Suppression
    from domain.vocabulary import Suppressed
    from workers.store import suppressions as store

    sent = send(mailroom, make_event(data={"email": "gus@bücher.example"}))
    assert smtp_sink.wait_for(1)
    with mailroom.rt.engine.begin() as conn:
        store.put(
            conn, "gus@bücher.example", Suppression(ALL_APPS, Suppressed.MANUAL, None),
            source=Source.ADMIN, detail="asked us", email_id=None, now=mailroom.rt.clock(),
        )  # fmt: skip
    # The report names the domain in its ASCII form, as relays write it.
    hard = bounce(sent, recipient="gus@xn--bcher-kva.example")
    assert feedback.record(mailroom.rt, hard).fresh
    assert suppressions(mailroom) == {("gus@bücher.example", "*"): "manual"}  # the admin's stays
    # A delivery report arriving late does not turn the bounce back into a success.
    late = Report(Feedback.DELIVERED, Source.DSN, email_id=sent.id)
    assert not feedback.record(mailroom.rt, late).fresh
    [row] = mailroom.rows(Email, Email.id == sent.id)
    assert row.feedback == "bounced"
