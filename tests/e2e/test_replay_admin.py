"""The admin's replay after an outage, on real servers: Redis stopped under a
replay, and a few hundred mixed dead letters cleaned up from summary to a
forced replay, every recipient getting exactly the mail it should."""

import json
import shutil
import subprocess
import tempfile
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.commands import run
from tests.conftest import invite, make_event, reset
from tests.servers import SMTPSink, _pings, free_port, wait_until
from workers import intake
from workers.store.tables import Email

pytestmark = pytest.mark.slow


class StoppableRedis:
    """A redis-server of this test's own, stopped and started on one port."""

    def __init__(self) -> None:
        import redis

        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mailroom-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis(port=self.port, socket_timeout=1)
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(lambda: _pings(self.client), what="redis-server to answer")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.stop()
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_redis():
    server = StoppableRedis()
    yield server
    server.close()


def test_replay_with_redis_stopped_tells_the_truth(make_mailroom, env, smtp_sink, own_redis):
    env = {**env, "REDIS_URL": own_redis.url}
    mailroom = make_mailroom(REDIS_URL=own_redis.url)
    smtp_sink.reply = "550 5.1.1 mailbox unavailable"
    mailroom.publish(make_event())
    mailroom.publish("{broken")
    mailroom.wait_for_failed(2)
    smtp_sink.reply = None
    [email_row] = [f for f in mailroom.failed() if f.email_id]
    [event_row] = [f for f in mailroom.failed() if not f.email_id]

    own_redis.stop()
    try:
        # An email replay needs only the database: queued, and the row says so.
        replayed = run(env, "failed", "replay", str(email_row.id), "--force")
        assert replayed.returncode == 0, replayed.stderr
        assert f"{email_row.id}: replayed as email" in replayed.stdout
        assert "queued, the workers' sweeper (broker unreachable) sends it" in replayed.stdout
        assert "within about 15 s" in replayed.stdout
        [row] = [f for f in mailroom.failed() if f.id == email_row.id]
        assert row.status == "replayed"
        [copy] = mailroom.rows(Email, Email.id == row.replayed_email_id)
        assert copy.status in ("queued", "sending", "sent")

        # An event replay needs Redis: the row stays dead and the command says so.
        refused = run(env, "failed", "replay", str(event_row.id), "--json")
        assert refused.returncode == 4
        report = json.loads(refused.stdout)
        assert report["unreachable"] == 1 and report["replayed"] == {"emails": 0, "events": 0}
        assert "cannot reach Redis" in report["rows"][0]["error"]
        said = run(env, "failed", "replay", str(event_row.id))
        assert said.returncode == 4
        assert "stays dead" in said.stderr and "replay them once Redis is back" in said.stderr
        assert [f.status for f in mailroom.failed() if f.id == event_row.id] == ["dead"]

        # The running worker sends the replayed mail without the broker.
        [message] = smtp_sink.wait_for(1, timeout=30)
        assert message["To"] == "ada@example.com"
        shown = json.loads(run(env, "failed", "show", str(email_row.id), "--json").stdout)
        assert shown["replay_outcome"] == "sent"
    finally:
        own_redis.start()  # the worker stops cleanly against a live Redis


class Bouncing:
    """An SMTP handler answering 550 for the addresses in ``sink.bounce``."""

    def __init__(self, sink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.original_content, policy=policy.default)
        refused = set(envelope.rcpt_tos) & self.sink.bounce
        with self.sink.lock:
            (self.sink.rejected if refused else self.sink.messages).append(message)
        return "550 5.1.1 no such user" if refused else "250 2.0.0 OK queued"


@pytest.fixture
def bouncing_sink():
    sink = SMTPSink(handler_class=Bouncing)
    sink.bounce = set()
    yield sink
    sink.stop()


KINDS = ("signup", "invite", "password_changed", "password_reset")


def _event(i: int, kind: str) -> dict:
    address = f"user{i}@example.com"
    if kind == "signup":
        return make_event(data={"email": address})
    if kind == "invite":
        return invite(email=address, invite_id=f"inv-{i}")
    if kind == "password_changed":
        return make_event("password.changed", {"email": address, "user_id": f"u{i}"})
    return reset(email=address, user=f"u{i}")


def test_an_admin_cleans_up_hundreds_of_dead_letters(make_mailroom, env, bouncing_sink):
    sink = bouncing_sink
    env = {**env, "MAILROOM_SMTP_PORT": str(sink.port)}
    mailroom = make_mailroom(start_worker=False, MAILROOM_SMTP_PORT=str(sink.port))
    count = 240
    # Fate by i % 4: 0 refused (550), 1 its deadline passes before any attempt,
    # else sent; kind by (i // 4) % 4; half the expired ones asked 2 hours ago.
    fate = {i: ("bounce", "expire", "send", "send")[i % 4] for i in range(count)}
    kind = {i: KINDS[(i // 4) % 4] for i in range(count)}
    aged = {i for i in range(count) if fate[i] == "expire" and (i // 16) % 2 == 0}
    sink.bounce = {f"user{i}@example.com" for i in range(count) if fate[i] == "bounce"}
    events = [_event(i, kind[i]) for i in range(count)]
    for start in range(0, count, 100):
        intake.accept_batch(mailroom.rt, [(json.dumps(e),) for e in events[start : start + 100]])
    now = mailroom.rt.clock()
    by_address = {f"user{i}@example.com": i for i in range(count)}
    with mailroom.rt.engine.begin() as conn:
        for email in mailroom.emails():
            i = by_address[email.recipient]
            values = {}
            if fate[i] == "expire":
                values["deadline"] = now - timedelta(seconds=1)
            if i in aged:
                values["created_at"] = now - timedelta(hours=2)
            if values:
                conn.execute(update(Email).where(Email.id == email.id).values(**values))
    mailroom.start()
    wait_until(lambda: len(mailroom.failed()) == count // 2, 40, what="the dead letters")
    sink.wait_for(count // 2, timeout=30)

    # 1. Where to start.
    summary = json.loads(run(env, "failed", "summary", "--json").stdout)
    assert summary["total"] == count // 2
    assert summary["by_reason"] == {"rejected": count // 4, "expired_before_delivery": count // 4}
    assert sum(summary["by_kind"].values()) == count // 2 and set(summary["by_kind"]) == set(KINDS)
    assert summary["by_app"] == {"notes": count // 2}
    assert summary["by_age"] == {"<1h": count // 2 - len(aged), "1h-24h": len(aged),
                                 "1d-7d": 0, ">7d": 0}  # fmt: skip

    # 2. A filtered page.
    expired_signups = sum(fate[i] == "expire" and kind[i] == "signup" for i in range(count))
    page = run(env, "failed", "list", "--reason", "expired_before_delivery", "--kind", "signup",
               "--limit", "5")  # fmt: skip
    assert page.returncode == 0, page.stderr
    assert len(page.stdout.splitlines()) == 1 + 5
    assert page.stderr.strip() == (
        f"rows 1-5 of {expired_signups}, newest first; next page: --offset 5"
    )
    assert "@example.com#" in page.stdout and "user" not in page.stdout

    # 3. The dry run: what would go, what would not and why.
    too_old = {i for i in aged if kind[i] in ("signup", "password_reset")}
    guarded = {i for i in range(count) if fate[i] == "expire"} - too_old
    dry = run(env, "failed", "replay", "--all", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["replayed"] == {"emails": len(guarded), "events": 0}
    assert report["skipped"] == {"rejected": count // 4, "too_old": len(too_old)}
    assert all(r["age_seconds"] >= 7200 for r in report["rows"] if r.get("skipped") == "too_old")
    text = run(env, "failed", "replay", "--all", "--dry-run")
    assert text.stdout.count("would skip too_old: asked too long ago (limit 1h00m)") == len(too_old)
    assert sink.messages[count // 2 :] == []

    # 4. The guarded replay, paced and waited on.
    sink.bounce = set()  # the mailboxes are fixed
    done = run(env, "failed", "replay", "--all", "--rate", "200", "--wait", "--json")
    assert done.returncode == 0, json.loads(done.stdout).get("wait")
    report = json.loads(done.stdout)
    assert report["replayed"]["emails"] == len(guarded)
    assert report["wait"]["delivered"] == len(guarded) and report["wait"]["pending"] == 0
    assert report["wait"]["failed_again"] == {}

    # 5. The forced replay of the rest, in text as an admin reads it.
    forced = run(env, "failed", "replay", "--all", "--force", "--rate", "200", "--wait")
    assert forced.returncode == 0, forced.stderr
    rest = count // 4 + len(too_old)
    assert f"replayed {rest} email(s) and 0 event(s)" in forced.stdout
    assert f"delivered {rest}, failed again 0" in forced.stdout

    # 6. Nothing left: a second replay sends nothing.
    again = run(env, "failed", "replay", "--all")
    assert (again.returncode, again.stderr.strip()) == (1, "Error: nothing to replay")

    # Every recipient got exactly one mail; the chain says so too.
    wait_until(lambda: len(sink.messages) >= count, 10, what="every mail")
    received = Counter(m["To"] for m in sink.messages)
    assert received == Counter(f"user{i}@example.com" for i in range(count))
    assert len(sink.rejected) == count // 4
    listed = json.loads(run(env, "failed", "list", "--status", "replayed", "--limit", "0",
                            "--json").stdout)  # fmt: skip
    assert len(listed) == count // 2
    assert {r["replay_outcome"] for r in listed} == {"sent"}
