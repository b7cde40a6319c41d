"""Every flow through the real processes (`mailroom worker`, `mailroom serve`, the
CLI) at LOG_LEVEL=DEBUG, and nothing any of them printed holds a code, a link
token, a link, a password or a credential."""

import json
import os
import re
import signal
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.commands import MAILROOM
from tests.conftest import TOKEN_SECRET, base_env, make_event
from tests.mail import LINK, parts
from tests.servers import SMTPSink, free_port, wait_until

SMTP_USER, SMTP_PASSWORD = "mailroom", "smtp-Pa55word-never-printed"


def _authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
        SMTP_USER, SMTP_PASSWORD
    )  # fmt: skip
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_sink():
    sink = SMTPSink(authenticator=_authenticator, auth_required=True, auth_require_tls=False)
    yield sink
    sink.stop()


class Processes:
    """The fleet's processes, each with its whole output kept."""

    def __init__(self, env: dict, tmp_path) -> None:
        self.env = {"PATH": os.environ["PATH"], **env}
        self.tmp = tmp_path
        self.running: list[tuple[subprocess.Popen, object]] = []
        self.printed: list[str] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        out = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 (closed in stop)
        process = subprocess.Popen([MAILROOM, *args], env=self.env, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        self.running.append((process, out))
        return process

    def cli(self, *args: str, keep: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([MAILROOM, *args], env=self.env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        if keep:
            self.printed.append(f"$ mailroom {' '.join(args)}\n{done.stdout}{done.stderr}")
        return done

    def stop(self) -> None:
        for process, out in self.running:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=90)
            out.close()
        self.printed += [p.read_text() for p in sorted(self.tmp.glob("*.log"))]


def secrets_of(message) -> list[str]:
    """What a mail carries that must stay in it: its code, its links and their tokens."""
    text = parts(message)[0]
    found = re.findall(r"(?<![\d.])\d{6,8}(?!\d)", text)
    for link in LINK.findall(text):
        token = parse_qs(urlsplit(link).query).get("token")
        if token:
            found += [link, token[0]]
    return found


def test_nothing_printed_by_any_process_holds_a_secret(
    redis_server, clean_db, redis_client, auth_sink, tmp_path
):
    api_port = free_port()
    env = {
        **base_env(redis_server.url, clean_db, auth_sink.port),
        "MAILROOM_SMTP_USERNAME": SMTP_USER,
        "MAILROOM_SMTP_PASSWORD": SMTP_PASSWORD,
        "MAILROOM_METRICS_PORT": "0",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
    }
    fleet = Processes(env, tmp_path)
    try:
        fleet.start("worker", "worker", "--processes", "1", "--threads", "2")
        fleet.start("api", "serve", "--port", str(api_port))
        created = fleet.cli("apikey", "create", "notes", "--json", keep=False)  # prints it once
        api_key = json.loads(created.stdout)["key"]
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}",
                           headers={"Authorization": f"Bearer {api_key}"})  # fmt: skip
        wait_until(lambda: _answers(api), timeout=30, what="the API")

        # Every event type, one through the CLI.
        user = {"user_id": "u1"}
        events = [
            make_event(data={"email": "ada@example.com", "name": "Ada"}),
            make_event("login.code_requested", {"email": "ada@example.com", **user}),
            make_event(
                "email.change_requested",
                {**user, "current_email": "ada@example.com", "new_email": "ada@example.org"},
            ),  # fmt: skip
            make_event(
                "password.reset_requested",
                {"email": "ada@example.com", **user, "account_exists": True},
            ),  # fmt: skip
            make_event(
                "invite.created",
                {
                    "invite_id": "i1",
                    "email": "grace@example.com",
                    "inviter_name": "Ada",
                    "workspace_id": "w1",
                    "workspace_name": "Engines",
                    "role": "member",
                },
            ),  # fmt: skip
            make_event("password.changed", {"email": "ada@example.com", **user}),
            make_event(
                "email.changed",
                {**user, "old_email": "ada@example.com", "new_email": "ada@example.org"},
            ),  # fmt: skip
        ]
        for event in events[1:]:
            redis_client.xadd("mailroom:events", {"event": json.dumps(event)})
        published = fleet.cli("publish", "user.signup_requested", "--source", "notes",
                              "--data", json.dumps(events[0]["data"]))  # fmt: skip
        assert published.returncode == 0, published.stderr
        mails = auth_sink.wait_for(8, timeout=30)

        # The app verifies and consumes what its users received, wrongly too.
        by_subject = {m["Subject"]: m for m in mails}
        signup = next(m for s, m in by_subject.items() if "verification code" in s)
        code = re.search(r"\b(\d{6,8})\b", parts(signup)[0]).group(1)
        wrong = "000000" if code != "000000" else "111111"
        for attempt in (wrong, code):
            api.post(
                "/v1/codes/verify",
                json={"purpose": "signup", "email": "ada@example.com", "code": attempt},
            )
        for message in mails:
            for link in LINK.findall(parts(message)[0]):
                purpose = {"reset-password": "password_reset", "invite": "invite"}
                for path, name in purpose.items():
                    if f"/{path}" in link:
                        token = parse_qs(urlsplit(link).query)["token"][0]
                        api.post("/v1/tokens/peek", json={"purpose": name, "token": token})
                        api.post("/v1/tokens/consume", json={"purpose": name, "token": token})
        api.post("/v1/tokens/consume", json={"purpose": "invite", "token": "x" * 40})

        # A refused mail, then what an admin runs about it.
        auth_sink.reply = "550 5.1.1 <nobody@example.com>: no such user"
        redis_client.xadd("mailroom:events", {"event": json.dumps(
            make_event(data={"email": "nobody@example.com"}))})  # fmt: skip
        failed = wait_until(
            lambda: json.loads(fleet.cli("failed", "list", "--json", keep=False).stdout),
            timeout=30, what="a dead letter",
        )  # fmt: skip
        auth_sink.reply = None
        failed_id = str(failed[0]["id"])
        for command in (("failed", "list"), ("failed", "show", failed_id),
                        ("failed", "replay", failed_id, "--force", "--wait"), ("status",),
                        ("config", "show"), ("send-test", "--to", "ops@example.com")):  # fmt: skip
            fleet.cli(*command)
        mails = auth_sink.wait_for(10, timeout=30)
        api.close()
    finally:
        fleet.stop()

    needles = {SMTP_PASSWORD, TOKEN_SECRET, api_key}
    for message in mails + auth_sink.rejected:
        needles.update(secrets_of(message))
    assert len(needles) > 10  # codes, links and tokens were found in the mail
    printed = "\n".join(fleet.printed)
    # The output is real: each process's lines are in it.
    assert '"email.sent"' in printed and '"email.dead_lettered"' in printed
    assert "/v1/codes/verify" in printed  # the API's access log
    assert "$ mailroom failed show" in printed
    for needle in needles:
        # A code as a word of its own (not six digits inside an id or a timestamp).
        shown = rf"(?<![0-9A-Za-z.]){re.escape(needle)}(?![0-9A-Za-z])"
        assert not re.search(shown, printed), f"printed: {needle[:3]}…"


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False
