"""The tally itself, on made-up figures: each target it checks can fail (no servers)."""

import json
from email.message import EmailMessage

from tests.faults.load import Published, address
from tests.faults.tally import Database, Fault, leaks, tally

T0 = 1_000_000.0
TOKEN = "Zq3xT0k3nValue_abcdefghijklmnop"


def mail(n: int, at: float, code: str = "123456", token: str = TOKEN) -> EmailMessage:
    message = EmailMessage()
    message["To"] = address(n)
    message.set_content(
        f"Your verification code is: {code}\nhttps://app.example.com/v?token={token}"
    )
    message.add_alternative("<p>html</p>", subtype="html")
    message.envelope_to = [address(n)]
    message.arrived = at
    return message


def published(count: int) -> list[Published]:
    return [Published(n, f"id-{n}", address(n), T0 + n, T0 + n) for n in range(count)]


def test_a_clean_run_passes(tmp_path):
    log = tmp_path / "w.log"
    log.write_text(json.dumps({"event": "email.sent", "to": "f***@example.com"}) + "\n")
    events = published(10)
    db = Database({p.id: p.at for p in events}, [], {"sent": 10})
    messages = [mail(p.n, p.at + 0.1) for p in events]
    report = tally("clean", events, messages, db, [Fault("f", T0 + 5, T0 + 5)], [log])
    assert report.violations == [], report.table()


def test_loss_lateness_duplicates_and_dead_letters_fail(tmp_path):
    events = published(100)
    messages = [mail(p.n, p.at + 0.1) for p in events[:90]]  # 90..99 never mailed
    messages[50].arrived = T0 + 200  # mailed 145 s after the fault at 50..55 ended
    messages.append(mail(3, T0 + 100))  # a duplicate 97 s after its original
    dead = [("retries_exhausted", address(90), "id-90")]
    db = Database({p.id: p.at for p in events}, dead, {})
    fault = Fault("kill", T0 + 50, T0 + 55)
    report = tally("bad", events, messages, db, [fault], [])
    text = "\n".join(report.violations)
    assert "lost 9 events" in text
    assert "not mailed within 30 s" in text
    assert "duplicates > 30 s" in text
    assert "dead-lettered unexpectedly" in text
    assert "1 duplicates not in flight when a fault struck" in text
    assert any("duplicates > 0.5%" in v for v in report.violations)


def test_a_duplicate_of_a_mail_in_flight_at_a_kill_is_explained(tmp_path):
    events = published(10)
    messages = [mail(p.n, p.at + 0.1) for p in events]
    messages.append(mail(4, T0 + 20))  # #4 reached the server just before the kill at T0 + 5
    db = Database({p.id: p.at for p in events}, [], {"sent": 10})
    report = tally("kill", events, messages, db, [Fault("kill", T0 + 5, T0 + 5)], [])
    assert report.violations == [], report.table()
    assert "1 in flight when a fault struck" in report.rows["duplicated"]
    # The same duplicate with no fault near its original is not.
    report = tally("none", events, messages, db, [Fault("kill", T0 + 30, T0 + 30)], [])
    assert report.violations == ["1 duplicates not in flight when a fault struck",
                                 "1 duplicates > 0.5% of 10 events"]  # fmt: skip


def test_the_rejected_set_must_match_exactly(tmp_path):
    events = published(4)
    messages = [mail(p.n, p.at) for p in events[:3]]
    db = Database({}, [("rejected", address(3), "id-3"), ("rejected", address(2), "id-2")], {})
    report = tally("550", events, messages, db, [], [], expected_rejected={address(3)})
    assert any("expected exactly the 1 refused" in v for v in report.violations)


def test_the_log_grep_finds_addresses_codes_and_tokens(tmp_path):
    log = tmp_path / "w.log"
    lines = [
        {
            "event": "ok",
            "to": "f***@example.com",
            "timestamp": "2024-01-01T00:00:00.123456Z",
            "message_id": "<0b1c.mailroom@notes.example.com>",
        },  # fmt: skip
        {"event": "bad", "to": "fault-7@example.com"},
        {"event": "bad", "detail": "code 654321 sent"},
        {"event": "bad", "url": f"https://app.example.com/v?token={TOKEN}"},
    ]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\nplain fault-8@example.com\n")
    found = leaks([log], {"654321", "123456"}, {TOKEN})
    assert len(found["addresses"]) == 2
    assert len(found["codes"]) == 1  # not the timestamp's microseconds
    assert len(found["tokens"]) == 1
