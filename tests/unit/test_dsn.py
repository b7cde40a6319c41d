"""Returned mail read (domain.dsn): real-world delivery status notifications
(Postfix, Exim, Gmail), a feedback report, and what is not a report."""

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain import dsn, verp
from domain.feedback import Report, Source
from domain.vocabulary import Feedback

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mail"
DOMAIN = "bounces.notes.example"
KEY = verp.key_for(b"current-pepper")
OLD_KEY = verp.key_for(b"old-pepper")
EMAIL_ID = uuid.UUID("0f2a7c1e-1111-4a4a-9c9c-5d5d5d5d5d5d")
RETURN_PATH = verp.return_path(EMAIL_ID, KEY, DOMAIN)


def fixture(name: str, return_path: str = RETURN_PATH, replace: dict | None = None) -> bytes:
    """A returned message of tests/fixtures/mail, with its return path, edited."""
    text = (FIXTURES / name).read_text().replace("RETURN_PATH", return_path)
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


def read(raw: bytes, recipients=(RETURN_PATH,), keys=(KEY,)) -> dsn.Returned:
    return dsn.read(raw, list(recipients), keys=keys, domain=DOMAIN)


# ---------------------------------------------------------------- DSN (RFC 3464)


def test_a_postfix_bounce_for_an_unknown_user_is_a_permanent_bounce():
    returned = read(fixture("postfix_user_unknown.eml"))
    assert returned == dsn.Returned(
        kind=Source.DSN,
        email_id=EMAIL_ID,
        reports=(
            Report(
                feedback=Feedback.BOUNCED,
                source=Source.DSN,
                email_id=EMAIL_ID,
                recipient="nobody@example.com",
                reason="permanent",
                detail="5.1.1 smtp; 550 5.1.1 <nobody@example.com>: Recipient address "
                "rejected: User unknown",
                at=datetime(2026, 12, 1, 10, 0, 1, tzinfo=UTC),
            ),
        ),
    )


def test_an_exim_bounce_keeps_its_own_status_and_the_remote_diagnostic():
    [report] = read(fixture("exim_no_such_user.eml")).reports
    assert (report.feedback, report.reason, report.recipient) == (
        Feedback.BOUNCED, "permanent", "nobody@example.org",
    )  # fmt: skip
    assert report.detail == "5.0.0 smtp; 550 5.1.1 <nobody@example.org>: No such user here"


def test_a_gmail_bounce_is_read_past_its_html_and_icon_and_its_folded_diagnostic():
    [report] = read(fixture("gmail_no_such_user.eml")).reports
    assert (report.feedback, report.recipient) == (Feedback.BOUNCED, "nobody@gmail.com")
    assert report.detail.startswith(
        "5.1.1 smtp; 550-5.1.1 The email account that you tried to reach does not exist. "
        "Please try 550-5.1.1 double-checking"
    )
    assert "\n" not in report.detail and report.detail.endswith("- gsmtp")
    # Its Date (-0800) in UTC.
    assert report.at == datetime(2026, 12, 1, 10, 0, 3, tzinfo=UTC)


def test_a_delay_warning_is_no_bounce():
    # The mail may yet arrive: counted as a bounce, three greylisted mails would
    # suppress an address that works.
    warning = read(fixture("postfix_delayed.eml"))
    assert warning.reports == ()
    assert warning.ignored == "a delay warning (the relay is still trying)"


def test_a_mailbox_still_full_when_the_relay_gave_up_is_a_transient_bounce():
    [report] = read(fixture("postfix_mailbox_full.eml")).reports
    assert (report.feedback, report.reason, report.recipient) == (
        Feedback.SOFT_BOUNCED, "transient", "full@example.net",
    )  # fmt: skip
    assert report.detail == "4.2.2 smtp; 452 4.2.2 <full@example.net>: Mailbox full"


@pytest.mark.parametrize(
    ("action", "status", "feedback", "reason"),
    [
        ("failed", "5.2.1", Feedback.BOUNCED, "permanent"),
        ("failed", "4.4.7", Feedback.SOFT_BOUNCED, "transient"),
        ("failed", "5.1.1 (bad destination mailbox address)", Feedback.BOUNCED, "permanent"),
        ("failed", "unknown", Feedback.SOFT_BOUNCED, "undetermined"),
        ("delivered", "2.0.0", Feedback.DELIVERED, None),
        ("relayed", "2.0.0", Feedback.DELIVERED, None),
    ],
)
def test_each_action_and_status_class_has_its_feedback(action, status, feedback, reason):
    raw = fixture(
        "postfix_user_unknown.eml",
        replace={"Action: failed": f"Action: {action}", "Status: 5.1.1": f"Status: {status}"},
    )
    [report] = read(raw).reports
    assert (report.feedback, report.reason) == (feedback, reason)


def test_a_recipient_block_with_an_unknown_action_gives_no_report():
    returned = read(
        fixture("postfix_user_unknown.eml", replace={"Action: failed": "Action: pondered"})
    )
    assert returned.reports == ()
    assert returned.ignored == "malformed report (no recipient with a known action)"


def test_every_recipient_block_is_a_report_and_the_original_recipient_wins():
    second = (
        "Final-Recipient: rfc822; ada@forward.example\n"
        "Original-Recipient: rfc822;ada@example.com\n"
        "Action: delivered\nStatus: 2.0.0\n\n"
        "--4B3C21A0B3F.1796119201/mx.notes.example\nContent-Description: Undelivered"
    )
    raw = fixture(
        "postfix_user_unknown.eml",
        replace={
            "--4B3C21A0B3F.1796119201/mx.notes.example\nContent-Description: Undelivered": second
        },
    )
    reports = read(raw).reports
    assert [(r.feedback, r.recipient) for r in reports] == [
        (Feedback.BOUNCED, "nobody@example.com"),
        (Feedback.DELIVERED, "ada@example.com"),
    ]


def test_a_long_diagnostic_is_capped():
    raw = fixture(
        "postfix_user_unknown.eml",
        replace={"rejected: User unknown\n": "rejected: " + "very " * 300 + "unknown\n"},
    )
    [report] = read(raw).reports
    assert len(report.detail) == dsn.DETAIL_LIMIT and report.detail.endswith("…")


# ---------------------------------------------------------------- ARF (RFC 5965)


def test_a_feedback_loop_complaint_names_its_mail_by_the_returned_return_path():
    # Sent to the feedback loop's own address, not to the return path.
    returned = read(fixture("arf_abuse.eml"), recipients=["fbl@notes.example.com"])
    assert returned == dsn.Returned(
        kind=Source.ARF,
        email_id=EMAIL_ID,
        reports=(
            Report(
                feedback=Feedback.COMPLAINED,
                source=Source.ARF,
                email_id=EMAIL_ID,
                recipient="grumpy@example.net",
                reason="abuse",
                detail="abuse (ExampleFBL/2.1)",
                at=datetime(2026, 12, 1, 11, 15, tzinfo=UTC),
            ),
        ),
    )


def test_a_complaint_without_original_rcpt_to_names_the_returned_mails_to():
    raw = fixture("arf_abuse.eml", replace={"Original-Rcpt-To: <grumpy@example.net>\n": ""})
    [report] = read(raw).reports
    assert report.recipient == "grumpy@example.net"


@pytest.mark.parametrize("feedback_type", ["fraud", "other"])
def test_fraud_and_other_reports_are_complaints_too(feedback_type):
    raw = fixture(
        "arf_abuse.eml", replace={"Feedback-Type: abuse": f"Feedback-Type: {feedback_type}"}
    )
    [report] = read(raw).reports
    assert (report.feedback, report.reason) == (Feedback.COMPLAINED, feedback_type)


@pytest.mark.parametrize("feedback_type", ["not-spam", "virus", "auth-failure"])
def test_a_feedback_report_that_is_no_complaint_gives_no_report(feedback_type):
    raw = fixture(
        "arf_abuse.eml", replace={"Feedback-Type: abuse": f"Feedback-Type: {feedback_type}"}
    )
    returned = read(raw)
    assert (returned.kind, returned.email_id, returned.reports) == (Source.ARF, EMAIL_ID, ())
    assert returned.ignored == f"feedback type {feedback_type} is not a complaint"


def test_a_feedback_report_without_a_type_gives_no_report():
    returned = read(fixture("arf_abuse.eml", replace={"Feedback-Type: abuse\n": ""}))
    assert returned.reports == ()
    assert returned.ignored == "malformed feedback report (no Feedback-Type)"


# ---------------------------------------------------------------- which email


def test_a_maildir_copy_without_envelope_is_named_by_its_delivered_to():
    assert read(fixture("postfix_user_unknown.eml"), recipients=[]).email_id == EMAIL_ID


def test_the_envelope_recipient_wins_over_the_headers():
    other_id = uuid.uuid4()
    envelope = verp.return_path(other_id, KEY, DOMAIN)
    assert read(fixture("postfix_user_unknown.eml"), recipients=[envelope]).email_id == other_id


def test_a_return_path_made_with_an_old_pepper_still_counts():
    old = verp.return_path(EMAIL_ID, OLD_KEY, DOMAIN)
    returned = read(fixture("exim_no_such_user.eml", old), [old], keys=(KEY, OLD_KEY))
    assert returned.email_id == EMAIL_ID and len(returned.reports) == 1


def test_a_made_up_return_path_names_no_mail_even_with_a_real_entity_ref_id():
    # A return path of the right shape for the right email, with a MAC of another key;
    # the returned headers carry the email's id in X-Entity-Ref-ID, unsigned.
    forged = verp.return_path(EMAIL_ID, verp.key_for(b"attacker"), DOMAIN)
    returned = read(fixture("postfix_user_unknown.eml", forged), [forged])
    assert returned == dsn.Returned(
        kind=Source.DSN, ignored="names no mail of ours (no valid return path)"
    )


def test_a_return_path_of_another_domain_names_no_mail():
    elsewhere = verp.return_path(EMAIL_ID, KEY, "bounces.other.example")
    assert read(fixture("postfix_user_unknown.eml", elsewhere), [elsewhere]).email_id is None


def test_the_local_part_is_matched_whatever_its_case():
    shouting = RETURN_PATH.upper()
    assert read(fixture("postfix_user_unknown.eml", shouting), [shouting]).email_id == EMAIL_ID


# ---------------------------------------------------------------- not reports


def test_an_out_of_office_reply_is_not_a_report():
    assert read(fixture("out_of_office.eml")) == dsn.Returned(ignored="not a report (text/plain)")


def test_a_read_receipt_is_no_delivery_report():
    raw = fixture(
        "postfix_user_unknown.eml",
        replace={
            "report-type=delivery-status": "report-type=disposition-notification",
            "Type: message/delivery-status": "Type: message/disposition-notification",
        },
    )
    assert read(raw) == dsn.Returned(
        ignored="not a delivery or feedback report (report-type disposition-notification)"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"Content-Type: multipart/report; report-type=delivery-status\n\nno boundary at all",
        b'Content-Type: multipart/report; boundary="b"\n\n--b\nContent-Type: '
        b"message/delivery-status\n\n\n--b--\n",
        b"Content-Type: message/delivery-status\n\nAction: failed\nStatus: 5.1.1\n",
    ],
)
def test_broken_input_gives_no_report_and_a_reason(raw):
    returned = read(raw)
    assert returned.reports == () and returned.ignored


def test_a_report_cut_short_anywhere_never_raises():
    whole = fixture("gmail_no_such_user.eml")
    for end in range(0, len(whole), 97):
        returned = read(whole[:end])
        assert returned.reports == () or returned.reports[0].feedback == Feedback.BOUNCED
        assert bool(returned.reports) != bool(returned.ignored)
