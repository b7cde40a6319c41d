"""SES bounces, complaints and deliveries through SNS, end to end: mail sent
through the real SES transport (moto), then notifications signed by a test SNS
certificate served over HTTPS, posted to a real ``mailroom serve``."""

import json
import os
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.commands import MAILROOM
from tests.conftest import make_event
from tests.peers import Certificates
from tests.servers import ApiServer, free_port, wait_until
from tests.sns_signer import CERT_PATH, TOPIC, Signer, bounce, complaint, delivery
from workers.outcome_stream import FIELD, STREAM
from workers.store.tables import Email, SuppressionRow

SENDER = "no-reply@notes.example.com"
PATH = "/v1/providers/ses/notifications"
#: What SNS sends along (it posts JSON as text/plain).
SNS_HEADERS = {"Content-Type": "text/plain; charset=UTF-8"}


class SnsHost:
    """SNS as far as HTTPS goes: the signing certificate, and SubscribeURLs, on localhost."""

    def __init__(self, certificates: Certificates) -> None:
        self.hits: list[str] = []
        self.signer = None
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                host.hits.append(self.path)
                if self.path == CERT_PATH:
                    body, kind = host.signer.pem, "application/x-pem-file"
                elif self.path.startswith("/confirm"):
                    body, kind = b"<ConfirmSubscriptionResponse/>", "text/xml"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.socket = certificates.server_context().wrap_socket(
            self.server.socket, server_side=True
        )
        self.port = self.server.server_port
        self.signer = Signer(f"https://localhost:{self.port}{CERT_PATH}")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def certificates():
    with tempfile.TemporaryDirectory(prefix="mailroom-sns-") as directory:
        yield Certificates(Path(directory))


@pytest.fixture(scope="module")
def sns_host(certificates):
    host = SnsHost(certificates)
    yield host
    host.stop()


@pytest.fixture
def sns(sns_host):
    sns_host.hits.clear()
    return sns_host


@pytest.fixture
def ses(ses_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ses_server.reset()
    from workers.transports.ses import SESTransport

    SESTransport(region="eu-west-1", endpoint_url=ses_server.url).client.create_email_identity(
        EmailIdentity=SENDER
    )
    return ses_server


def sns_settings(certificates) -> dict:
    return {
        "MAILROOM_SNS_TOPIC_ARNS": f"arn:aws:sns:us-east-1:999999999999:else, {TOPIC}",
        "MAILROOM_SNS_CERT_HOSTS": "localhost",
        "REQUESTS_CA_BUNDLE": str(certificates.ca_file),
    }


class Stack:
    """A worker sending through SES, and ``mailroom serve`` taking SNS notifications."""

    def __init__(self, mailroom, environ: dict, directory: Path) -> None:
        self.mailroom = mailroom
        self.port = free_port()
        self.log_file = directory / "serve.log"
        with self.log_file.open("wb") as out:
            self.process = subprocess.Popen(
                [MAILROOM, "serve", "--port", str(self.port)],
                env={"PATH": os.environ["PATH"], **environ},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._healthy, timeout=30, what="mailroom serve")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def post(self, message: dict | bytes) -> httpx.Response:
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        return httpx.post(self.url + PATH, content=body, headers=SNS_HEADERS, timeout=30)

    def send(self, count: int = 1, email: str = "ada@example.com") -> list[Email]:
        # One at a time: a signup asked again before its mail went out supersedes it.
        for number in range(1, count + 1):
            self.mailroom.publish(make_event(data={"email": email, "name": "Ada"}))
            sent = self.mailroom.wait_for_status("sent", number)
        return sorted(sent, key=lambda e: e.created_at)

    def email(self, email_id) -> Email:
        [row] = self.mailroom.rows(Email, Email.id == email_id)
        return row

    def suppressions(self) -> list[SuppressionRow]:
        return self.mailroom.rows(SuppressionRow)

    def outcomes(self, status: str | None = None) -> list[dict]:
        entries = self.mailroom.redis.xrange(STREAM)
        records = [json.loads(fields[FIELD.encode()]) for _, fields in entries]
        return [r for r in records if status is None or r["status"] == status]

    def log_lines(self) -> list[dict]:
        lines = self.log_file.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def stack(make_mailroom, env, ses, sns, certificates, tmp_path):
    worker_env = {
        "MAILROOM_TRANSPORT": "ses",
        "MAILROOM_SES_REGION": "eu-west-1",
        "MAILROOM_SES_ENDPOINT_URL": ses.url,
        "MAILROOM_MAIL_FROM": f"Notes <{SENDER}>",
    }
    mailroom = make_mailroom(**worker_env)
    environ = {**env, **worker_env, **sns_settings(certificates)}
    running = Stack(mailroom, environ, tmp_path)
    yield running
    running.stop()
    print(running.log_file.read_text())


def taken(**counts) -> dict:
    return {"type": "Notification", "notification": None, "recorded": 0, "repeated": 0,
            "unmatched": 0, **counts}  # fmt: skip


def test_a_permanent_bounce_suppresses_the_address_everywhere_once(stack, sns):
    [email] = stack.send()
    assert email.provider_id  # SES's MessageId, as moto answered it
    notification = sns.signer.notification(bounce(email.provider_id, "ada@example.com"))
    answer = stack.post(notification)
    assert (answer.status_code, answer.json()) == (200, taken(notification="Bounce", recorded=1))
    row = stack.email(email.id)
    assert (row.feedback, row.feedback_detail) == (
        "bounced", "5.1.1 smtp; 550 5.1.1 user unknown",
    )  # fmt: skip
    [suppression] = stack.suppressions()
    assert (suppression.address_key, suppression.scope, suppression.reason, suppression.source) == (
        "ada@example.com", "*", "bounced", "ses",
    )  # fmt: skip
    assert suppression.email_id == email.id and suppression.expires_at is not None
    [outcome] = wait_until(lambda: stack.outcomes("bounced"), what="the bounced outcome")
    assert outcome == {
        "event_id": str(email.event_id), "email_id": str(email.id), "app": "notes",
        "kind": "signup", "status": "bounced", "reason": "permanent", "transport": "ses",
        "attempt": 1, "at": "2024-05-02T10:00:00.000Z",
    }  # fmt: skip
    outcomes_before = stack.outcomes()
    # SNS delivers at least once: the same notification again changes nothing.
    again = stack.post(notification)
    assert (again.status_code, again.json()) == (200, taken(notification="Bounce", repeated=1))
    assert stack.email(email.id).feedback_at == row.feedback_at
    assert [(s.created_at, s.detail) for s in stack.suppressions()] == [
        (suppression.created_at, suppression.detail)
    ]
    assert stack.outcomes() == outcomes_before
    # The next mail to that address is not sent.
    stack.mailroom.publish(make_event())
    [held] = stack.mailroom.wait_for_status("suppressed")
    assert held.suppressed_reason == "bounced"
    # One certificate fetch for both notifications.
    assert sns.hits == [CERT_PATH]


def test_transient_bounces_suppress_at_the_soft_limit(stack, sns):
    emails = stack.send(3)
    for number, email in enumerate(emails, 1):
        ses_bounce = bounce(email.provider_id, "ada@example.com", "Transient", event=True)
        answer = stack.post(sns.signer.notification(ses_bounce, version="2"))
        assert (answer.status_code, answer.json()) == (
            200, taken(notification="Bounce", recorded=1),
        )  # fmt: skip
        assert stack.email(email.id).feedback == "soft_bounced"
        assert len(stack.suppressions()) == (1 if number == 3 else 0)  # MAILROOM_SOFT_BOUNCE_LIMIT
    [suppression] = stack.suppressions()
    assert (suppression.scope, suppression.reason, suppression.email_id) == (
        "*", "bounced", emails[-1].id,
    )  # fmt: skip
    # On the stream a soft bounce is a `bounced` outcome, its reason `transient`.
    outcomes = wait_until(lambda: len(o := stack.outcomes("bounced")) == 3 and o, what="3")
    assert {(o["email_id"], o["reason"]) for o in outcomes} == {
        (str(e.id), "transient") for e in emails
    }


def test_a_complaint_suppresses_for_the_app_and_a_delivery_is_recorded(stack, sns):
    delivered, complained = stack.send(2)
    answer = stack.post(sns.signer.notification(delivery(delivered.provider_id, "ada@example.com")))
    assert (answer.status_code, answer.json()) == (200, taken(notification="Delivery", recorded=1))
    assert stack.email(delivered.id).feedback == "delivered"
    assert stack.suppressions() == []
    answer = stack.post(
        sns.signer.notification(complaint(complained.provider_id, "ada@example.com", None))
    )
    assert (answer.status_code, answer.json()) == (200, taken(notification="Complaint", recorded=1))
    assert stack.email(complained.id).feedback == "complained"
    [suppression] = stack.suppressions()
    assert (suppression.scope, suppression.reason, suppression.expires_at) == (
        "notes", "complained", None,
    )  # fmt: skip
    wait_until(lambda: stack.outcomes("complained"), what="the complained outcome")
    assert [(o["email_id"], o["status"], o["reason"]) for o in stack.outcomes()[-2:]] == [
        (str(delivered.id), "delivered", None),
        (str(complained.id), "complained", "abuse"),
    ]


def test_notifications_of_other_mail_or_kinds_are_taken_and_ignored(stack, sns):
    [email] = stack.send()
    stranger = stack.post(sns.signer.notification(bounce("0100018f-not-ours", "ada@example.com")))
    assert stranger.json() == taken(notification="Bounce", unmatched=1)
    other_recipient = stack.post(
        sns.signer.notification(bounce(email.provider_id, "eve@x.example"))
    )
    assert other_recipient.json() == taken(notification="Bounce", unmatched=1)
    opened = {"eventType": "Open", "mail": {"messageId": email.provider_id}, "open": {}}
    answer = stack.post(sns.signer.notification(opened))
    assert (answer.status_code, answer.json()) == (200, taken(notification="Open"))
    assert stack.email(email.id).feedback is None and stack.suppressions() == []
    unmatched = [line for line in stack.log_lines() if line["event"] == "feedback.unmatched"]
    assert len(unmatched) == 2


def test_untrusted_notifications_are_refused_and_change_nothing(stack, sns, certificates):
    [email] = stack.send()
    notice = bounce(email.provider_id, "ada@example.com")
    forged = sns.signer.notification(notice)
    forged["Message"] = forged["Message"].replace("Permanent", "Transient")
    unsigned = {k: v for k, v in sns.signer.notification(notice).items() if k != "Signature"}
    elsewhere = Signer(f"https://127.0.0.1:{sns.port}{CERT_PATH}").notification(notice)
    plain_http = Signer(f"http://localhost:{sns.port}{CERT_PATH}").notification(notice)
    other_topic = sns.signer.notification(notice, topic="arn:aws:sns:eu-west-1:666:theirs")
    stranger = Signer(f"https://localhost:{sns.port}{CERT_PATH}").notification(notice)
    refused = {
        "forged": (forged, 403, "signature does not match"),
        "unsigned": (unsigned, 403, "no Signature"),
        "elsewhere": (elsewhere, 403, "SigningCertURL host not allowed"),
        "plain http": (plain_http, 403, "SigningCertURL is not https"),
        "other topic": (other_topic, 403, "topic not allowed"),
        "another key": (stranger, 403, "signature does not match"),
        "not JSON": (b"{'Type': 'Notification'", 400, "body is not JSON"),
        "not SES": (sns.signer.notification({"hello": 1}), 400,
                    "Message is not an SES notification"),
    }  # fmt: skip
    for name, (message, status, reason) in refused.items():
        answer = stack.post(message)
        error = "forbidden" if status == 403 else "bad_request"
        assert (answer.status_code, answer.json()) == (
            status,
            {"error": error, "detail": reason},
        ), name
    assert stack.email(email.id).feedback is None
    assert stack.suppressions() == []
    assert stack.outcomes("bounced") == []
    # Nothing fetched from a host not allowed, or for a topic not allowed.
    assert sns.hits == [CERT_PATH]
    lines = [line for line in stack.log_lines() if line["event"] == "ses.notification_refused"]
    assert [line["reason"] for line in lines] == [reason for _, _, reason in refused.values()]
    assert all(line["level"] == "warning" for line in lines)
    log_text = stack.log_file.read_text()
    assert "user unknown" not in log_text and email.provider_id not in log_text


def test_a_subscription_is_confirmed_once_and_only_for_an_allowed_topic_and_host(stack, sns):
    confirm = f"https://localhost:{sns.port}/confirm?Action=ConfirmSubscription&Token=2336"
    for message, status in (
        (sns.signer.confirmation(confirm, topic="arn:aws:sns:eu-west-1:666:theirs"), 403),
        (sns.signer.confirmation(f"https://127.0.0.1:{sns.port}/confirm?evil=1"), 403),
        (sns.signer.confirmation(confirm), 200),
    ):
        answer = stack.post(message)
        assert answer.status_code == status, answer.text
    assert answer.json() == {**taken(), "type": "SubscriptionConfirmation"}
    assert [hit for hit in sns.hits if hit.startswith("/confirm")] == [
        "/confirm?Action=ConfirmSubscription&Token=2336"
    ]
    events = [line["event"] for line in stack.log_lines() if line["event"].startswith("ses.")]
    assert events == ["ses.notification_refused"] * 2 + ["ses.subscription_confirmed"]


def test_the_route_is_documented_and_needs_no_api_key(stack):
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    operation = spec["paths"][PATH]["post"]
    assert "security" not in operation and "401" not in operation["responses"]
    assert {"200", "400", "403", "503"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["text/plain"]["schema"]["$ref"]
    assert spec["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]["SigningCertURL"]


def post(api: ApiServer, message: dict) -> httpx.Response:
    answer = httpx.post(api.url + PATH, content=json.dumps(message), headers=SNS_HEADERS)
    api.conforms("POST", PATH, answer)
    return answer


def test_a_database_outage_answers_503_so_sns_retries(
    make_mailroom, sns, certificates, monkeypatch
):
    settings = sns_settings(certificates)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", settings.pop("REQUESTS_CA_BUNDLE"))
    dead = f"postgresql://mailroom@127.0.0.1:{free_port()}/gone"
    mailroom = make_mailroom(start_worker=False, DATABASE_URL=dead, **settings)
    api = ApiServer(mailroom.rt)
    try:
        notice = sns.signer.notification(bounce("0100018f-any", "ada@example.com"))
        answer = post(api, notice)
        assert (answer.status_code, answer.json()) == (
            503, {"error": "unavailable", "detail": "database"},
        )  # fmt: skip
        assert int(answer.headers["retry-after"]) > 0
        unsigned = {k: v for k, v in notice.items() if k != "Signature"}
        refused = post(api, unsigned)
        assert refused.status_code == 403  # trust is checked before the database is needed
    finally:
        api.stop()


def test_an_unreachable_certificate_answers_503(make_mailroom, sns, certificates, monkeypatch):
    settings = sns_settings(certificates)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", settings.pop("REQUESTS_CA_BUNDLE"))
    mailroom = make_mailroom(start_worker=False, **settings)
    api = ApiServer(mailroom.rt)
    try:
        missing = Signer(f"https://localhost:{sns.port}/SimpleNotificationService-000000.pem")
        notice = missing.notification(bounce("0100018f-any", "ada@example.com"))
        answer = post(api, notice)
        assert (answer.status_code, answer.json()) == (
            503, {"error": "unavailable", "detail": "sns"},
        )  # fmt: skip
    finally:
        api.stop()


def test_an_oversized_body_is_refused_unread(stack):
    answer = stack.post(b"{" + b" " * (1024 * 1024))
    assert (answer.status_code, answer.json()) == (
        400, {"error": "bad_request", "detail": "body too large"},
    )  # fmt: skip
