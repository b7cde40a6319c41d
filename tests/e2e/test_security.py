"""DESIGN.md's security rules, each shown on the running system."""

import pytest

from domain import tokens
from tests.conftest import TOKEN_SECRET, failure, invite, make_event
from tests.mail import code_in, parts
from workers.verification import Verifier

NEW_SECRET = "second-pepper-abcdefghijklmnopqrstuvwxyz"


def test_a_second_key_takes_over_and_old_codes_verify_until_they_expire(
    mailroom, make_mailroom, smtp_sink
):
    mailroom.publish(make_event(data={"email": "ada@example.com"}))
    old_code = code_in(smtp_sink.wait_for(1)[0])
    assert mailroom.challenges()[0].key_id == "k1"

    rotated = make_mailroom(
        start_worker=False,
        MAILROOM_TOKEN_KEY_ID="k2",
        MAILROOM_TOKEN_SECRET=NEW_SECRET,
        MAILROOM_TOKEN_OLD_SECRETS=f"k1={TOKEN_SECRET}",
    )
    forgotten = make_mailroom(
        start_worker=False, MAILROOM_TOKEN_KEY_ID="k2", MAILROOM_TOKEN_SECRET=NEW_SECRET
    )
    assert failure(Verifier(forgotten.rt).verify_code, "notes", "signup", "ada@example.com",
                   old_code) == "invalid"  # fmt: skip
    assert Verifier(rotated.rt).verify_code("notes", "signup", "ada@example.com", old_code)

    # The fleet now runs the new settings only: new mail is issued under the new key.
    mailroom.stop_worker()
    rotated.start()
    rotated.publish(make_event(data={"email": "bob@example.com"}))
    new_code = code_in(smtp_sink.wait_for(2)[1])
    [challenge] = [c for c in rotated.challenges() if c.email == "bob@example.com"]
    assert challenge.key_id == "k2"
    assert Verifier(rotated.rt).verify_code("notes", "signup", "bob@example.com", new_code)


def test_codes_are_compared_in_constant_time(mailroom, smtp_sink, monkeypatch):
    compared = []
    original = tokens.hmac.compare_digest

    def spy(a, b):
        compared.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    mailroom.publish(make_event())
    code = code_in(smtp_sink.wait_for(1)[0])
    assert Verifier(mailroom.rt).verify_code("notes", "signup", "ada@example.com", code)
    assert compared == [(64, 64)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"inviter_name": "Eve\r\nBcc: victim@example.com"}, "data.inviter_name: control"),
        ({"workspace_name": "Team\nX"}, "data.workspace_name: control"),
        ({"inviter_name": "=?UTF-8?Q?Eve?="}, "data.inviter_name: encoded words"),
        ({"email": ["grace@example.com", "eve@example.com"]}, "data.email: Input should be"),
        ({"email": {"address": "grace@example.com"}}, "data.email: Input should be"),
        ({"email": '"grace"@example.com'}, "data.email: Quoting"),
        ({"email": "Grace <grace@example.com>"}, "data.email: A display name"),
        ({"email": "grace＠example.com"}, 'data.email: The email address has the "full-width"'),
        ({"email": "grace@printer.local"}, "data.email: The part after the @-sign is a special"),
        ({"email": "grace@localhost"}, "data.email: "),
        ({"workspace_name": "W" * 101}, "data.workspace_name: String should have at most 100"),
        ({"inviter_name": "x" * 20_000}, "event is "),
    ],
)
def test_hostile_input_is_refused_with_a_reason_and_nothing_is_sent(
    mailroom, smtp_sink, data, reason
):
    mailroom.publish(invite(**data))
    [failed] = mailroom.wait_for_failed(1)
    assert failed.reason == "invalid_event"
    assert failed.error.startswith(reason), failed.error
    assert mailroom.emails() == [] and smtp_sink.messages == []


def test_names_are_shown_literally_and_escaped_and_headers_are_exactly_ours(mailroom, smtp_sink):
    mailroom.publish(
        invite(
            inviter_name="<b>Eve</b> {{7*7}}",
            workspace_name='"><script>alert(1)</script>',
            name="{% raw %}Grace",
        )
    )
    [message] = smtp_sink.wait_for(1)
    # What a demanding receiver expects on auth mail, and nothing that marks it as
    # bulk or subscription mail (no Precedence, no List-Unsubscribe).
    assert sorted(message.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "X-Entity-Ref-ID",
         "Feedback-ID", "MIME-Version", "Content-Type"]
    )  # fmt: skip
    [email] = mailroom.wait_for_status("sent")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Entity-Ref-ID"] == f"{email.id}.mailroom"
    assert message["Feedback-ID"] == "invite:notes:mailroom:notes.example.com"
    assert (
        message["Subject"] == '<b>Eve</b> {{7*7}} invites you to join "><script>alert(1)</script>'
    )
    text, html = parts(message)
    assert "<b>Eve</b> {{7*7}}" in text and "49" not in text and "{% raw %}Grace" in text
    assert "<script>" not in html and "<b>Eve</b>" not in html
    assert "&lt;b&gt;Eve&lt;/b&gt; {{7*7}}" in html
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
