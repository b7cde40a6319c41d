"""The verification API: codes, link tokens, locks, cool-downs and what a use sets off."""

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from domain.errors import VerificationFailed
from tests.conftest import make_event
from tests.mail import code_in, parts, secrets_in, to, token_in
from workers import intake
from workers.store.tables import Challenge, Email
from workers.verification import Verifier


def failure(call, *args) -> str:
    with pytest.raises(VerificationFailed) as caught:
        call(*args)
    return caught.value.code


def mail_all(unit, *events: dict) -> list:
    """Accept the events, deliver their mail (one drain) and return the new messages."""
    before = len(unit.transport.sent)
    for event in events:
        intake.accept_event(unit.rt, json.dumps(event))
    unit.drain()
    return unit.transport.sent[before:]


def mailed(unit, event: dict):
    """Accept the event, deliver its mail and return the newest message."""
    return mail_all(unit, event)[-1]


def signup(email="ada@example.com"):
    return make_event(data={"email": email, "name": "Ada"})


def reset(email="ada@example.com", user="u1"):
    data = {"email": email, "account_exists": True, "user_id": user}
    return make_event("password.reset_requested", data)


def change(user="u1", current="ada@example.com", new="ada@example.org"):
    data = {"user_id": user, "current_email": current, "new_email": new, "name": "Ada"}
    return make_event("email.change_requested", data)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.fixture
def verifier(unit):
    return Verifier(unit.rt)


# ---------------------------------------------------------------- codes


def test_the_right_code_verifies_once_and_uses_the_challenge_up(unit, verifier):
    code = code_in(mailed(unit, signup()))

    verified = verifier.verify_code("notes", "signup", "ADA@example.com", code)
    [challenge] = unit.rows(Challenge)
    assert (verified.purpose, verified.email, verified.challenge_id) == (
        "signup",
        "ada@example.com",
        str(challenge.id),
    )
    assert verified.old_email is None and verified.invite is None
    assert challenge.consumed_at is not None
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "invalid"
    lines = [line for line in unit.log_lines() if line["event"] == "verification.code"]
    assert [line["outcome"] for line in lines] == ["ok", "invalid"]
    assert lines[0]["to"] == "a***@example.com"
    assert code not in unit.log.getvalue()


def test_a_code_is_bound_to_its_purpose_and_app(unit, verifier):
    code = code_in(mailed(unit, signup()))
    assert failure(verifier.verify_code, "notes", "login", "ada@example.com", code) == "invalid"
    assert failure(verifier.verify_code, "other", "signup", "ada@example.com", code) == "invalid"
    assert failure(verifier.verify_code, "notes", "invite", "ada@example.com", code) == "invalid"
    assert failure(verifier.verify_code, "notes", "signup", "not an address", code) == "invalid"
    assert verifier.verify_code("notes", "signup", "ada@example.com", code)


def test_five_wrong_codes_lock_the_challenge(unit, verifier):
    code = code_in(mailed(unit, signup()))

    answers = [failure(verifier.verify_code, "notes", "signup", "ada@example.com", wrong(code))
               for _ in range(5)]  # fmt: skip
    assert answers == ["invalid"] * 5
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "locked"
    [challenge] = unit.rows(Challenge)
    assert challenge.attempts == 5 and challenge.consumed_at is None


def test_the_right_code_on_the_fifth_try_still_verifies(unit, verifier):
    code = code_in(mailed(unit, signup()))
    for _ in range(4):
        failure(verifier.verify_code, "notes", "signup", "ada@example.com", wrong(code))
    assert verifier.verify_code("notes", "signup", "ada@example.com", code)


def test_ten_failures_in_a_row_cool_the_address_down(unit, verifier):
    code = code_in(mailed(unit, signup()))

    answers = [failure(verifier.verify_code, "notes", "signup", "ada@example.com", "123")
               for _ in range(11)]  # fmt: skip
    assert answers == ["invalid"] * 5 + ["locked"] * 5 + ["rate_limited"]
    # Even the right code is refused while it cools down.
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == (
        "rate_limited"
    )
    assert any(line["event"] == "verification.address_cooling_down" for line in unit.log_lines())
    # And no new code is mailed meanwhile.
    event = signup()
    intake.accept_event(unit.rt, json.dumps(event))
    [suppressed] = unit.rows(Email, Email.event_id == uuid.UUID(event["id"]))
    assert (suppressed.status, suppressed.suppressed_reason) == ("suppressed", "locked")


def test_an_unknown_address_answers_like_a_known_one(unit, verifier):
    mailed(unit, signup())

    def answers(address):
        return [failure(verifier.verify_code, "notes", "signup", address, "123456")
                for _ in range(11)]  # fmt: skip

    known = answers("ada@example.com")
    assert known == answers("nobody@example.com")
    assert known == ["invalid"] * 5 + ["locked"] * 5 + ["rate_limited"]


def test_a_right_code_ends_the_run_of_wrong_ones(unit, verifier):
    code = code_in(mailed(unit, signup()))
    for _ in range(4):
        failure(verifier.verify_code, "notes", "signup", "ada@example.com", wrong(code))
    verifier.verify_code("notes", "signup", "ada@example.com", code)
    code = code_in(mailed(unit, signup()))
    # Four more wrong ones would make nine in a row without the reset: none cools down.
    for _ in range(4):
        failure(verifier.verify_code, "notes", "signup", "ada@example.com", wrong(code))
    assert verifier.verify_code("notes", "signup", "ada@example.com", code)


def test_an_expired_code_or_link_answers_expired(unit, verifier):
    code, token = secrets_in(mailed(unit, signup()))
    # Expiry is the database's clock: a worker clock a day ahead changes nothing...
    ahead = unit.rt.clock() + timedelta(days=1)
    unit.rt.clock = lambda: ahead
    assert verifier.peek_token("notes", "signup", token)
    # ...the database saying it is over does.
    with unit.rt.engine.begin() as conn:
        conn.execute(update(Challenge).values(expires_at=Challenge.issued_at))
    assert failure(verifier.peek_token, "notes", "signup", token) == "expired"
    assert failure(verifier.consume_token, "notes", "signup", token) == "expired"
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "expired"
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", wrong(code)) == (
        "invalid"
    )


def test_a_code_asked_for_before_its_mail_left_is_invalid(unit, verifier):
    unit.rt.dispatch.delivery = lambda _id: None
    intake.accept_event(unit.rt, json.dumps(signup()))
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", "123456") == (
        "invalid"
    )


# ---------------------------------------------------------------- link tokens


def test_a_token_is_consumed_once(unit, verifier):
    token = token_in(mailed(unit, signup()))

    assert verifier.consume_token("notes", "signup", token).email == "ada@example.com"
    assert failure(verifier.consume_token, "notes", "signup", token) == "invalid"
    assert failure(verifier.peek_token, "notes", "signup", token) == "invalid"
    assert failure(verifier.consume_token, "notes", "login", token) == "invalid"


def test_code_and_link_are_one_challenge(unit, verifier):
    code, token = secrets_in(mailed(unit, signup()))
    verifier.consume_token("notes", "signup", token)
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "invalid"


def test_peeking_does_not_consume(unit, verifier):
    token = token_in(mailed(unit, signup()))

    for _ in range(2):
        peeked = verifier.peek_token("notes", "signup", token)
        assert peeked.email == "ada@example.com" and peeked.expires_at is not None
    assert unit.rows(Challenge)[0].consumed_at is None
    assert verifier.consume_token("notes", "signup", token)


def test_a_malformed_or_unknown_token_is_invalid(unit, verifier):
    mailed(unit, signup())
    for token in ["", "short", "x" * 129, "not/url-safe" * 3, "A" * 43]:
        assert failure(verifier.consume_token, "notes", "signup", token) == "invalid"
        assert failure(verifier.peek_token, "notes", "signup", token) == "invalid"
    assert failure(verifier.consume_token, "notes", "nonsense", "A" * 43) == "invalid"


def test_a_reset_link_revokes_the_users_other_resets(unit, verifier):
    sent = mail_all(
        unit,
        reset(email="ada@example.com"),
        reset(email="ada.work@example.com"),
        reset(email="bob@example.com", user="u2"),
    )
    home, work, other_user = (
        token_in(to(sent, address)[0])
        for address in ("ada@example.com", "ada.work@example.com", "bob@example.com")
    )

    assert verifier.consume_token("notes", "password_reset", home).user_id == "u1"
    assert failure(verifier.consume_token, "notes", "password_reset", home) == "invalid"
    assert failure(verifier.consume_token, "notes", "password_reset", work) == "invalid"
    [revoked] = unit.rows(Challenge, Challenge.email == "ada.work@example.com")
    assert revoked.revoked_at is not None
    assert verifier.consume_token("notes", "password_reset", other_user).user_id == "u2"


# ---------------------------------------------------------------- email change


def test_verifying_an_email_change_notifies_the_old_address_and_revokes_the_rest(unit, verifier):
    login = make_event("login.code_requested", {"email": "ada@example.com", "user_id": "u1"})
    sent = mail_all(unit, reset(), login, change())
    assert len(sent) == 4  # the change mails a code to the new address, a notice to the old
    reset_token = token_in(to(sent, "ada@example.com", "Reset")[0])
    login_code = code_in(to(sent, "ada@example.com", "login")[0])
    confirm = to(sent, "ada@example.org")[0]

    verified = verifier.verify_code("notes", "email_change", "ada@example.org", code_in(confirm))
    assert (verified.user_id, verified.email, verified.old_email, verified.new_email) == (
        "u1",
        "ada@example.org",
        "ada@example.com",
        "ada@example.org",
    )
    # The notice is queued for the broker's workers.
    [notice] = unit.rows(Email, Email.kind == "email_changed")
    assert (notice.recipient, notice.challenge_id) == ("ada@example.com", None)
    unit.drain()
    [changed] = to(unit.transport.sent, "ada@example.com", "was changed")
    assert changed["Subject"] == "Your Notes email address was changed"
    text = parts(changed)[0]
    assert "a***@example.org" in text and "ada@example.org" not in text
    # Every other live challenge of the user is gone.
    assert failure(verifier.consume_token, "notes", "password_reset", reset_token) == "invalid"
    assert failure(verifier.verify_code, "notes", "login", "ada@example.com", login_code) == (
        "invalid"
    )
    assert all(c.revoked_at or c.consumed_at for c in unit.rows(Challenge))


def test_an_email_change_link_works_like_its_code(unit, verifier):
    mailed(unit, change())
    confirm = to(unit.transport.sent, "ada@example.org")[0]
    verified = verifier.consume_token("notes", "email_change", token_in(confirm))
    assert verified.new_email == "ada@example.org"
    unit.drain()
    assert to(unit.transport.sent, "ada@example.com", "was changed")


# ---------------------------------------------------------------- revocation


def test_a_revoked_challenge_no_longer_verifies(unit, verifier):
    code = code_in(mailed(unit, signup()))
    [challenge] = unit.rows(Challenge)
    assert verifier.revoke_challenge("other-app", str(challenge.id)) == 0
    assert verifier.revoke_challenge("notes", "not-a-uuid") == 0
    assert verifier.revoke_challenge("notes", str(challenge.id)) == 1
    assert failure(verifier.verify_code, "notes", "signup", "ada@example.com", code) == "invalid"


def test_revoking_a_user_ends_their_live_challenges(unit, verifier):
    token = token_in(mailed(unit, reset()))
    assert verifier.revoke_user("notes", "u1", "login") == 0
    assert verifier.revoke_user("notes", "u1") == 1
    assert failure(verifier.consume_token, "notes", "password_reset", token) == "invalid"
