"""Webhooks for real: each outcome of real mail POSTed to a local receiver that
verifies every request with the ``standardwebhooks`` library; a retry keeps its
webhook-id; a receiver that always fails ends in ``failed_webhooks``, which the
CLI lists and replays; a worker process killed between reading outcomes and
acknowledging them loses no webhook."""

import base64
import json
import os
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import standardwebhooks
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.feedback import Report, Source
from domain.vocabulary import Feedback
from tests.commands import MAILROOM, run
from tests.conftest import make_event
from tests.perf.probes import process_tree
from tests.servers import wait_until
from workers import feedback
from workers.bootstrap import build_runtime
from workers.settings import load_settings
from workers.store.tables import Email, FailedWebhook

SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
STREAM = "mailroom:outcomes"
GROUP = "mailroom-webhooks"


class Receiver:
    """An app's webhook endpoint: verifies, records, and answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        #: Statuses to answer the next requests with, first first; then ``default``.
        self.answers: list[int] = []
        self.default = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                try:
                    standardwebhooks.Webhook(SECRET).verify(body, dict(self.headers))
                    verified = True
                except standardwebhooks.WebhookVerificationError:
                    verified = False
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.requests.append({
                        "id": self.headers["webhook-id"], "verified": verified,
                        "path": self.path, "answered": status, **json.loads(body),
                    })  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/mailroom"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def taken(self) -> list[dict]:
        """The requests answered 2xx, one per webhook-id."""
        with self.lock:
            return list({r["id"]: r for r in self.requests if r["answered"] < 300}.values())

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def apps_file(tmp_path, receiver):
    path = tmp_path / "apps.toml"
    path.write_text(f'[apps.notes]\nwebhook_url = "{receiver.url}"\nwebhook_secret = "{SECRET}"\n')
    return path


def stream_ids(redis_client) -> dict[str, dict]:
    """Each outcome on the stream by the webhook-id it must arrive with."""
    return {
        f"msg_{entry_id.decode()}": json.loads(fields[b"outcome"])
        for entry_id, fields in redis_client.xrange(STREAM)
    }


def wait_for_mail(mailroom, address: str, **values) -> Email:
    def matches():
        rows = mailroom.rows(Email, Email.recipient == address)
        return next((r for r in rows if all(getattr(r, k) == v for k, v in values.items())), None)

    return wait_until(matches, 20, what=f"{address}'s mail {values}")


def test_each_outcome_reaches_the_webhook_signed_once_and_a_retry_keeps_its_id(
    make_mailroom, smtp_sink, receiver, apps_file, redis_client
):
    mailroom = make_mailroom(
        MAILROOM_APPS_FILE=str(apps_file),
        # A retry waits 2 to 4 s: time to change the SMTP server's mind before it.
        MAILROOM_RETRY_MIN_BACKOFF="2",
        MAILROOM_RETRY_MAX_BACKOFF="4",
    )
    receiver.answers = [500]  # the first webhook fails once
    mailroom.publish(make_event(data={"email": "ada@example.com"}))
    wait_for_mail(mailroom, "ada@example.com", status="sent")
    # Webhooks of different mail race each other: ada's first one is the refused one.
    wait_until(lambda: receiver.requests, 20, what="ada's first webhook")
    smtp_sink.reply = "451 4.3.0 try again later"
    mailroom.publish(make_event(data={"email": "bob@example.com"}))
    wait_for_mail(mailroom, "bob@example.com", status="queued", attempts=1)
    smtp_sink.reply = None
    wait_for_mail(mailroom, "bob@example.com", status="sent")
    smtp_sink.reply = "550 5.1.1 mailbox unavailable"
    mailroom.publish(make_event(data={"email": "carol@example.com"}))
    wait_for_mail(mailroom, "carol@example.com", status="failed")

    outcomes = stream_ids(redis_client)
    assert len(outcomes) == 4
    wait_until(lambda: len(receiver.taken()) == 4, 20, what="4 webhooks taken")
    assert all(r["verified"] and r["path"] == "/hooks/mailroom" for r in receiver.requests)
    recipients = {str(email.id): email.recipient for email in mailroom.emails()}
    types: dict[str, list[str]] = {}
    for request in sorted(receiver.taken(), key=lambda r: r["data"]["at"]):
        assert request["data"] == outcomes[request["id"]]  # the record, as the stream has it
        assert request["timestamp"] == request["data"]["at"]
        types.setdefault(recipients[request["data"]["email_id"]], []).append(request["type"])
    assert types == {
        "ada@example.com": ["email.sent"],
        "bob@example.com": ["email.deferred", "email.sent"],
        "carol@example.com": ["email.dead_lettered"],
    }
    # The one that failed came again under the same id; no other came twice.
    first, *rest = receiver.requests
    assert (first["answered"], first["type"]) == (500, "email.sent")
    assert [r["id"] for r in rest].count(first["id"]) == 1
    assert len(receiver.requests) == 5

    lines = mailroom.log_lines()
    [retrying] = [line for line in lines if line["event"] == "webhook.retrying"]
    assert (retrying["webhook_id"], retrying["status_code"], retrying["attempt"]) == (
        first["id"], 500, 1,
    )  # fmt: skip
    sent = [line for line in lines if line["event"] == "webhook.sent"]
    assert sorted(line["webhook_id"] for line in sent) == sorted(outcomes)
    assert all(line["app"] == "notes" and line["duration_ms"] >= 0 for line in sent)
    assert SECRET.removeprefix("whsec_") not in mailroom.log.getvalue()
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


def test_a_410_stops_that_webhook_at_once(make_mailroom, smtp_sink, receiver, apps_file):
    mailroom = make_mailroom(MAILROOM_APPS_FILE=str(apps_file))
    receiver.default = 410
    mailroom.publish(make_event(data={"email": "ada@example.com"}))
    wait_until(lambda: receiver.requests, 20, what="the webhook")
    wait_until(
        lambda: any(line["event"] == "webhook.gone" for line in mailroom.log_lines()),
        what="webhook.gone",
    )
    assert len(receiver.requests) == 1
    assert mailroom.rows(FailedWebhook) == []


def test_a_receiver_that_always_fails_is_dead_lettered_listed_and_replayed(
    make_mailroom, env, smtp_sink, receiver, apps_file
):
    mailroom = make_mailroom(MAILROOM_APPS_FILE=str(apps_file), MAILROOM_WEBHOOK_ATTEMPTS="3")
    receiver.default = 500
    mailroom.publish(make_event(data={"email": "ada@example.com"}))
    [row] = wait_until(lambda: mailroom.rows(FailedWebhook), 30, what="a failed webhook")
    assert len(receiver.requests) == 3
    assert len({r["id"] for r in receiver.requests}) == 1
    assert all(r["verified"] for r in receiver.requests)
    webhook_id = receiver.requests[0]["id"]
    [dead] = [line for line in mailroom.log_lines() if line["event"] == "webhook.dead_lettered"]
    assert (dead["webhook_id"], dead["status_code"], dead["attempt"], dead["error"]) == (
        webhook_id, 500, 3, "HTTP 500",
    )  # fmt: skip

    cli_env = {**env, "MAILROOM_APPS_FILE": str(apps_file)}
    listed = run(cli_env, "webhooks", "failed", "--json")
    assert (listed.returncode, listed.stderr) == (0, "")
    [shown] = json.loads(listed.stdout)
    assert {k: shown[k] for k in ("id", "status", "app", "webhook_id", "type", "url", "attempts",
                                  "last_status", "last_error", "replayed_at")} == {
        "id": row.id, "status": "dead", "app": "notes", "webhook_id": webhook_id,
        "type": "email.sent", "url": receiver.url, "attempts": 3, "last_status": 500,
        "last_error": "HTTP 500", "replayed_at": None,
    }  # fmt: skip
    assert shown["payload"]["data"]["status"] == "sent"
    table = run(cli_env, "webhooks", "failed")
    assert table.returncode == 0 and webhook_id in table.stdout and "HTTP 500" in table.stdout

    receiver.default = 200
    replayed = run(cli_env, "webhooks", "replay", str(row.id))
    assert (replayed.returncode, replayed.stdout, replayed.stderr) == (
        0,
        f"replayed 1: {row.id}\n",
        "",
    )
    wait_until(lambda: receiver.taken(), 20, what="the replayed webhook")
    [again] = receiver.taken()
    assert (again["id"], again["verified"], again["type"]) == (webhook_id, True, "email.sent")
    assert json.loads(run(cli_env, "webhooks", "failed", "--json").stdout) == []
    [done] = json.loads(run(cli_env, "webhooks", "failed", "--status", "replayed", "--json").stdout)
    assert done["id"] == row.id and done["replayed_at"] is not None

    twice = run(cli_env, "webhooks", "replay", str(row.id))
    assert (twice.returncode, twice.stdout) == (1, "")
    assert twice.stderr == f"skipped #{row.id}: already replayed\nError: nothing replayed\n"
    usage = run(cli_env, "webhooks", "replay")
    assert usage.returncode == 2 and "give failed-webhook IDs or --all" in usage.stderr


@pytest.mark.slow
def test_a_worker_killed_between_reading_and_acknowledging_loses_no_webhook(
    env, smtp_sink, receiver, apps_file, redis_client, tmp_path
):
    cli_env = {**env, "MAILROOM_APPS_FILE": str(apps_file)}
    log_path = tmp_path / "worker.log"
    # A real `mailroom worker`: its one process sends the mail and relays the outcomes.
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [MAILROOM, "worker", "-p", "1", "-t", "2"], env={"PATH": os.environ["PATH"], **cli_env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    rt = build_runtime(load_settings(cli_env), background=False)
    try:
        wait_until(lambda: '"ingress.started"' in log_path.read_text(), 60, what="the worker")
        for n in range(3):
            event = make_event(data={"email": f"u{n}@example.com"})
            redis_client.xadd("mailroom:events", {"event": json.dumps(event)})
        wait_until(lambda: len(receiver.taken()) == 3, 30, what="3 webhooks email.sent")

        # Frozen in its blocking read, the process is still handed the next outcomes
        # by Redis (read: pending for it) but never acknowledges them.
        [child] = [pid for pid in process_tree(worker.pid) if pid != worker.pid]
        os.kill(child, signal.SIGSTOP)
        # Each mail is reported delivered (as SES would), in well under the read's 1 s.
        for email in rt_rows(rt, Email):
            recorded = feedback.record(rt, Report(Feedback.DELIVERED, Source.SES, email.id))
            assert recorded is not None
        rt.outcome_stream.flush()
        wait_until(lambda: len(stream_ids(redis_client)) == 6, what="6 outcomes")
        assert redis_client.xpending(STREAM, GROUP)["pending"] >= 1
        os.kill(child, signal.SIGKILL)

        # The supervisor's new process relays what nobody read at once, and takes over
        # what the killed one had read once that sat 30 s.
        wait_until(lambda: len(receiver.taken()) == 6, 75, interval=0.5, what="6 webhooks")
        assert {r["id"] for r in receiver.taken()} == set(stream_ids(redis_client))
        assert (
            sorted(r["type"] for r in receiver.taken())
            == ["email.delivered"] * 3 + ["email.sent"] * 3
        )
        assert all(r["verified"] for r in receiver.requests)
        assert redis_client.xpending(STREAM, GROUP)["pending"] == 0
        assert '"webhook.relay_took_over"' in log_path.read_text()
    finally:
        rt.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def rt_rows(rt, model) -> list:
    with Session(rt.engine) as session:
        return list(session.scalars(select(model)))
