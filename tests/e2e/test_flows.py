"""Every auth flow end to end: the event, the mail that arrives, and what the
verification API says about what the user typed or clicked."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.conftest import change, failure, invite, make_event, reset
from tests.mail import code_in, link_in, parts, secrets_in, to, token_in
from tests.servers import SMTPSink, wait_until
from workers.store.tables import Challenge, Email, EventRow
from workers.verification import Verifier


def outcome_of(mailroom, event) -> str:
    rows = wait_until(
        lambda: mailroom.rows(EventRow, EventRow.id == event["id"]), what="the event row"
    )
    return rows[0].outcome


def signup(email="ada@example.com", **data):
    return make_event(data={"email": email, **data})


@pytest.fixture
def verifier(mailroom):
    return Verifier(mailroom.rt)


# ---------------------------------------------------------------- signup and login


def test_signup_code_and_link_verify_once(mailroom, smtp_sink, verifier):
    mailroom.publish(signup())
    [message] = smtp_sink.wait_for(1)
    code, token = secrets_in(message)

    peeked = verifier.peek_token("notes", "signup", token)
    assert peeked.email == "ada@example.com" and peeked.expires_at is not None
    verified = verifier.verify_code("notes", "signup", "ada@example.com", code)
    assert (verified.purpose, verified.email) == ("signup", "ada@example.com")
    # Code and link are bound to one challenge: either one uses it up.
    assert failure(verifier.consume_token, "notes", "signup", token) == "invalid"
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "invalid"


def test_code_length_is_configurable(make_mailroom, smtp_sink):
    mailroom = make_mailroom(MAILROOM_CODE_LENGTH="8")
    mailroom.publish(signup())
    code = code_in(smtp_sink.wait_for(1)[0])
    assert len(code) == 8
    assert Verifier(mailroom.rt).verify_code("notes", "signup", "ada@example.com", code)


def test_a_code_is_bound_to_its_purpose_address_and_app(mailroom, smtp_sink, verifier):
    mailroom.publish(signup())
    mailroom.publish(
        make_event("login.code_requested", {"email": "bob@example.com", "user_id": "u2"})
    )
    messages = smtp_sink.wait_for(2)
    code = code_in(to(messages, "ada@example.com")[0])
    assert failure(verifier.verify_code, "notes", "login", "ada@example.com", code) == "invalid"
    assert failure(verifier.verify_code, "notes", "signup", "bob@example.com", code) == "invalid"
    assert (
        failure(verifier.verify_code, "other-app", "signup", "ada@example.com", code) == "invalid"
    )
    token = token_in(to(messages, "bob@example.com")[0])
    assert failure(verifier.consume_token, "notes", "signup", token) == "invalid"
    assert verifier.consume_token("notes", "login", token).user_id == "u2"
    assert verifier.verify_code("notes", "signup", "ada@example.com", code)


def test_addresses_match_whatever_their_case(mailroom, smtp_sink, verifier):
    mailroom.publish(signup(email="Ada.Lovelace@Example.com"))
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "Ada.Lovelace@example.com"  # sent as given
    code = code_in(message)
    assert verifier.verify_code("notes", "signup", "ADA.LOVELACE@example.COM", code)
    # And the rate limit is not dodged by changing case.
    events = [signup(email=e) for e in ("ada.lovelace@example.com", "ADA.lovelace@example.com",
                                         "Ada.Lovelace@EXAMPLE.com")]  # fmt: skip
    for event in events:
        mailroom.publish(event)
    outcomes = sorted(outcome_of(mailroom, e) for e in events)
    assert outcomes == ["queued", "queued", "suppressed:rate_limited"]


def test_five_wrong_codes_lock_the_challenge(mailroom, smtp_sink, verifier):
    mailroom.publish(signup())
    code = code_in(smtp_sink.wait_for(1)[0])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [failure(verifier.verify_code, "notes", "signup", "ada@example.com", wrong)
               for _ in range(5)]  # fmt: skip
    assert answers == ["invalid"] * 5
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "locked"


def test_a_new_request_supersedes_the_code_but_keeps_the_failures(mailroom, smtp_sink, verifier):
    mailroom.publish(signup())
    first = code_in(smtp_sink.wait_for(1)[0])
    for _ in range(4):
        assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", "000000x")
    mailroom.publish(signup())
    second = code_in(smtp_sink.wait_for(2)[1])
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", first) == "invalid"
    # That was the fifth wrong code in all: the new challenge is locked too.
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", second) == "locked"


def test_consecutive_failures_across_challenges_cool_the_address_down(
    mailroom, smtp_sink, verifier
):
    mailroom.publish(signup())
    smtp_sink.wait_for(1)
    answers = [failure(verifier.verify_code, "notes", "signup", "ada@example.com", "123")
               for _ in range(11)]  # fmt: skip
    assert answers == ["invalid"] * 5 + ["locked"] * 5 + ["rate_limited"]
    # New codes are not even sent while it cools down.
    event = signup()
    mailroom.publish(event)
    assert outcome_of(mailroom, event) == "suppressed:locked"
    # An address nobody requested a code for answers exactly the same way.
    answers = [failure(verifier.verify_code, "notes", "signup", "nobody@example.com", "123456")
               for _ in range(11)]  # fmt: skip
    assert answers == ["invalid"] * 5 + ["locked"] * 5 + ["rate_limited"]


def test_more_than_three_sends_in_15_minutes_are_suppressed_not_failed(mailroom, smtp_sink):
    events = [signup() for _ in range(4)]
    for event in events:
        mailroom.publish(event)
    outcomes = [outcome_of(mailroom, e) for e in events]
    assert sorted(outcomes) == ["queued", "queued", "queued", "suppressed:rate_limited"]
    wait_until(
        lambda: not mailroom.rows(Email, Email.status.in_(["queued", "sending"])),
        what="deliveries to settle",
    )
    by_status = sorted((e.status, e.suppressed_reason) for e in mailroom.emails())
    # A request superseded before its mail left is not mailed: its code is moot.
    sent = [s for s in by_status if s == ("sent", None)]
    superseded = [s for s in by_status if s == ("suppressed", "superseded")]
    assert len(sent) >= 1 and len(sent) + len(superseded) == 3
    assert ("suppressed", "rate_limited") in by_status
    assert len(smtp_sink.messages) == len(sent)
    assert mailroom.failed() == []
    # Another kind to the same address is counted on its own.
    mailroom.publish(
        make_event("login.code_requested", {"email": "ada@example.com", "user_id": "1"})
    )
    smtp_sink.wait_for(len(sent) + 1)


def test_login_code_flow(mailroom, smtp_sink, verifier):
    mailroom.publish(
        make_event("login.code_requested", {"email": "ada@example.com", "user_id": "u1"})
    )
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Your Notes login code"
    verified = verifier.verify_code("notes", "login", "ada@example.com", code_in(message))
    assert verified.user_id == "u1"


def test_expiry_comes_from_the_database_clock(mailroom, smtp_sink, verifier):
    mailroom.publish(signup())
    code, token = secrets_in(smtp_sink.wait_for(1)[0])
    # A worker whose clock runs a day ahead changes nothing.
    ahead = mailroom.rt.clock() + timedelta(days=1)
    mailroom.rt.clock = lambda: ahead
    assert verifier.peek_token("notes", "signup", token)
    with mailroom.rt.engine.begin() as conn:
        conn.execute(update(Challenge).values(expires_at=Challenge.issued_at))
    assert failure(verifier.peek_token, "notes", "signup", token) == "expired"
    assert failure(verifier.consume_token, "notes", "signup", token) == "expired"
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "expired"


def test_the_signup_ttl_is_configurable(make_mailroom, smtp_sink):
    mailroom = make_mailroom(MAILROOM_SIGNUP_TTL="10")
    mailroom.publish(signup())
    [message] = smtp_sink.wait_for(1)
    assert "expire in 10 minutes" in parts(message)[0]
    [challenge] = mailroom.challenges()
    assert challenge.expires_at - challenge.issued_at == timedelta(minutes=10)


# ---------------------------------------------------------------- email change


def test_email_change_verifies_then_notifies_the_old_address(mailroom, smtp_sink, verifier):
    mailroom.publish(reset())
    mailroom.publish(change())
    messages = smtp_sink.wait_for(3)
    reset_mail = to(messages, "ada@example.com", "Reset")[0]
    confirm = to(messages, "ada@example.org")[0]
    notice = to(messages, "ada@example.com", "was requested")[0]
    assert confirm["Subject"] == "Confirm your new Notes email address"
    assert "a***@example.org" in parts(notice)[0] and "ada@example.org" not in parts(notice)[0]
    assert "If this was you" in parts(notice)[0]

    verified = verifier.verify_code("notes", "email_change", "ada@example.org", code_in(confirm))
    assert (verified.user_id, verified.old_email, verified.new_email) == (
        "u1", "ada@example.com", "ada@example.org"
    )  # fmt: skip
    [changed] = to(smtp_sink.wait_for(4), "ada@example.com", "was changed")
    assert changed["Subject"] == "Your Notes email address was changed"
    assert "a***@example.org" in parts(changed)[0]
    # The user's other live challenges are gone: the reset link no longer works.
    assert failure(verifier.consume_token, "notes", "password_reset", token_in(reset_mail)) == (
        "invalid"
    )


def test_requesting_the_current_address_cancels_the_pending_change(mailroom, smtp_sink, verifier):
    mailroom.publish(change())
    token = token_in(to(smtp_sink.wait_for(2), "ada@example.org")[0])
    cancel = change(new="ADA@example.com")
    mailroom.publish(cancel)
    assert outcome_of(mailroom, cancel) == "cancelled"
    assert failure(verifier.consume_token, "notes", "email_change", token) == "invalid"
    assert len(smtp_sink.messages) == 2


def test_an_address_claimed_by_another_users_pending_change_is_refused(mailroom, smtp_sink):
    mailroom.publish(change(user="u1"))
    smtp_sink.wait_for(2)
    second = change(user="u2", current="bob@example.com")
    mailroom.publish(second)
    assert outcome_of(mailroom, second) == "refused:address_claimed"
    assert len(smtp_sink.messages) == 2
    # The same user asking again replaces their own pending change.
    again = change(user="u1")
    mailroom.publish(again)
    assert outcome_of(mailroom, again) == "queued"


# ---------------------------------------------------------------- password reset


def test_password_reset_link_is_single_use_and_revokes_the_others(mailroom, smtp_sink, verifier):
    mailroom.publish(reset(email="ada@example.com"))
    mailroom.publish(reset(email="ada.work@example.com"))
    messages = smtp_sink.wait_for(2)
    home, work = token_in(messages[0]), token_in(messages[1])
    assert len(home) == 43  # 256 bits
    assert "code" not in parts(messages[0])[0].lower()
    [challenge, _] = mailroom.challenges()
    assert challenge.expires_at - challenge.issued_at == timedelta(hours=1)

    assert verifier.consume_token("notes", "password_reset", home).user_id == "u1"
    assert failure(verifier.consume_token, "notes", "password_reset", home) == "invalid"
    assert failure(verifier.consume_token, "notes", "password_reset", work) == "invalid"


def test_an_unknown_account_gets_a_notice_and_no_link(mailroom, smtp_sink):
    event = reset(exists=False)
    mailroom.publish(event)
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Notes password reset request"
    assert "there is no Notes account" in parts(message)[0]
    assert "http" not in parts(message)[0]
    assert mailroom.challenges() == []
    assert outcome_of(mailroom, event) == "unknown_account"


def test_an_unknown_account_can_get_nothing_at_all(make_mailroom, smtp_sink):
    mailroom = make_mailroom(MAILROOM_RESET_UNKNOWN_ACCOUNT="none")
    event = reset(exists=False)
    mailroom.publish(event)
    assert outcome_of(mailroom, event) == "unknown_account"
    mailroom.publish(signup())
    smtp_sink.wait_for(1)
    assert [m["Subject"] for m in smtp_sink.messages] == ["Your Notes verification code"]


def test_password_changed_sends_a_security_notice(mailroom, smtp_sink):
    mailroom.publish(make_event("password.changed", {"email": "ada@example.com", "user_id": "u1"}))
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Your Notes password was changed"
    assert "reset your password at once" in parts(message)[0]


def test_email_changed_event_sends_a_notice_to_the_old_address(mailroom, smtp_sink):
    data = {"user_id": "u1", "old_email": "ada@example.com", "new_email": "ada@example.org"}
    mailroom.publish(make_event("email.changed", data))
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "ada@example.com" and "a***@example.org" in parts(message)[0]


# ---------------------------------------------------------------- invite


def test_invite_link_returns_the_invite_data(mailroom, smtp_sink, verifier):
    mailroom.publish(invite(locale="fr-CA"))  # the recipient's locale, via fr
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Ada vous invite à rejoindre Engines"
    text = parts(message)[0]
    assert "le lien ci-dessous en crée un" in text and "expire dans 7 jours" in text
    assert link_in(message).startswith("https://app.example.com/invite/accept?token=")
    [email] = mailroom.emails()
    assert email.locale == "fr-CA"
    [challenge] = mailroom.challenges()
    assert challenge.expires_at - challenge.issued_at == timedelta(days=7)

    accepted = verifier.consume_token("notes", "invite", token_in(message))
    assert accepted.email == "grace@example.com"
    assert accepted.invite == {
        "invite_id": "inv-1", "workspace_id": "w-1", "workspace_name": "Engines",
        "role": "editor", "inviter_name": "Ada", "existing_user": False,
    }  # fmt: skip


def test_an_existing_user_is_asked_to_sign_in(mailroom, smtp_sink):
    mailroom.publish(invite(existing=True))
    message = smtp_sink.wait_for(1)[0]
    assert message["Subject"] == "Ada invites you to join Engines"
    text = parts(message)[0]
    assert "Sign in with this address and accept the invitation" in text
    assert "creates one" not in text


def test_invites_to_two_workspaces_both_stay_valid(mailroom, smtp_sink, verifier):
    mailroom.publish(invite())
    mailroom.publish(invite(invite_id="inv-2", workspace_id="w-2", workspace_name="Looms"))
    first, second = smtp_sink.wait_for(2)
    assert verifier.consume_token("notes", "invite", token_in(first))
    assert verifier.consume_token("notes", "invite", token_in(second))


def test_non_ascii_addresses_match_and_count_whatever_their_case(make_mailroom):
    sink = SMTPSink(enable_SMTPUTF8=True)
    try:
        mailroom = make_mailroom(MAILROOM_SMTP_PORT=str(sink.port))
        verifier = Verifier(mailroom.rt)
        events = [signup(email=e) for e in ("Ünal@example.com", "ünal@example.com",
                                            "ÜNAL@example.com", "üNAL@example.com")]  # fmt: skip
        for event in events:
            mailroom.publish(event)
        outcomes = sorted(outcome_of(mailroom, e) for e in events)
        assert outcomes == ["queued"] * 3 + ["suppressed:rate_limited"]
        wait_until(
            lambda: not mailroom.rows(Email, Email.status.in_(["queued", "sending"])),
            what="deliveries to settle",
        )
        code = code_in(sink.wait_for(1)[-1])
        assert verifier.verify_code("notes", "signup", "ünal@EXAMPLE.com", code)
    finally:
        sink.stop()


def test_answers_do_not_tell_whether_another_purpose_has_a_challenge(mailroom, smtp_sink, verifier):
    # ada has a live login challenge; bob has none but three wrong sign-up codes.
    mailroom.publish(
        make_event("login.code_requested", {"email": "ada@example.com", "user_id": "1"})
    )
    smtp_sink.wait_for(1)
    for _ in range(3):
        failure(verifier.verify_code, "notes", "signup", "bob@example.com", "111111")

    def answers(address):
        return [failure(verifier.verify_code, "notes", "login", address, "000000x")
                for _ in range(7)]  # fmt: skip

    assert answers("ada@example.com") == answers("bob@example.com")
    assert answers("carol@example.com")[:6] == ["invalid"] * 5 + ["locked"]


def test_a_producers_stray_secret_is_not_kept_on_the_dead_letter(mailroom):
    event = make_event(data={"email": "ada@example.com", "password": "hunter2-secret"})
    mailroom.publish(event)
    [failed] = mailroom.wait_for_failed(1)
    assert failed.error == "data.password: Extra inputs are not permitted"
    assert "hunter2-secret" not in failed.payload
    assert json.loads(failed.payload)["data"] == {"email": "ada@example.com",
                                                  "password": "[redacted]"}  # fmt: skip
