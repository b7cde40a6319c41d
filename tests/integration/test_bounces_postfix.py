"""A real MTA's bounce, end to end: mailroom relays a sign-up through Postfix to a
local user that does not exist; Postfix accepts it, local delivery fails, and
Postfix's own delivery status notification goes to the mail's VERP return path,
which its transport map leads over LMTP to `mailroom bounces serve`."""

import json
import os
import pwd
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from domain.addresses import address_key
from tests.conftest import make_event
from tests.e2e.test_bounces import BounceServer
from tests.peers import Postfix
from tests.servers import free_port, wait_until
from workers.store.tables import Email, SuppressionRow

DOMAIN = "bounces.notes.example"
#: No such account on this host (local delivery looks it up in the passwd file).
UNKNOWN = "ada.typo-7f3c"


class BouncingPostfix(Postfix):
    """A private Postfix that takes any address at example.com on SMTP (no
    recipient check), bounces those its local delivery does not know, and sends
    whatever is for ``bounce_domain`` to ``lmtp_port`` on loopback."""

    def __init__(self, bounce_domain: str, lmtp_port: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mailroom-postfix-bounce-"))
        self.conf = self.dir / "conf"
        self.mail = self.dir / "mail"
        for sub in ("conf", "queue", "data", "mail"):
            (self.dir / sub).mkdir()
        user = pwd.getpwnam("postfix")
        os.chown(self.dir / "data", user.pw_uid, user.pw_gid)
        os.chmod(self.dir, 0o755)
        (self.conf / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.mailroom.invalid
mydestination = example.com
mynetworks = 127.0.0.0/8
# Accept every local address on SMTP: the unknown one bounces at delivery, so
# Postfix writes a DSN rather than answering 550 to mailroom.
local_recipient_maps =
alias_maps =
alias_database =
transport_maps = texthash:{self.conf}/transport
maillog_file = {self.dir}/maillog
maillog_file_prefixes = {self.dir}
smtputf8_enable = yes
"""
        )
        # The operator's line: the bounce domain's mail goes to `mailroom bounces serve`.
        (self.conf / "transport").write_text(f"{bounce_domain} lmtp:inet:127.0.0.1:{lmtp_port}\n")
        services = [
            f"127.0.0.1:{self.port} inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "lmtp unix - - n - - lmtp",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        (self.conf / "master.cf").write_text("\n".join(services) + "\n")
        self._postfix("start")
        wait_until(self._answers, timeout=20, what="Postfix to listen")


@pytest.fixture
def bounce_env(env):
    return {**env, "MAILROOM_BOUNCE_DOMAIN": DOMAIN, "MAILROOM_BOUNCES_PORT": str(free_port())}


@pytest.fixture
def postfix(bounce_env):
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root to start (CI runs as root)")
    if shutil.which("postfix") is None:
        pytest.skip("Postfix is not installed (bash tests/run.sh installs it)")
    server = BouncingPostfix(DOMAIN, int(bounce_env["MAILROOM_BOUNCES_PORT"]))
    yield server
    print(server.log())
    server.stop()


def test_postfix_bounces_mail_for_an_unknown_user_back_to_mailroom(
    make_mailroom, bounce_env, postfix, redis_client
):
    with pytest.raises(KeyError):
        pwd.getpwnam(UNKNOWN)
    bounces = BounceServer(
        {**bounce_env, "MAILROOM_BOUNCES_PROTOCOL": "lmtp"},
        port=int(bounce_env["MAILROOM_BOUNCES_PORT"]),
    )
    try:
        mailroom = make_mailroom(**{**bounce_env, "MAILROOM_SMTP_PORT": str(postfix.port)})
        address = f"{UNKNOWN}@example.com"
        event = make_event(data={"email": address})
        mailroom.publish(event)
        # Postfix took it (250): as far as SMTP goes, it was sent.
        [sent] = mailroom.wait_for_status("sent", timeout=30)
        assert sent.event_id == uuid.UUID(event["id"])

        def bounced():
            [email] = mailroom.rows(Email, Email.id == sent.id)
            return email if email.feedback else None

        email = wait_until(bounced, timeout=30, what="Postfix's bounce to be recorded")
    finally:
        code, stderr = bounces.stop()
    print(stderr)
    assert code == 0
    assert email.feedback == "bounced"
    assert email.feedback_detail == f'5.1.1 X-Postfix; unknown user: "{UNKNOWN}"'
    [row] = mailroom.rows(SuppressionRow)
    assert (row.address_key, row.scope, row.reason, row.source, row.email_id) == (
        address_key(address), "*", "bounced", "dsn", sent.id,
    )  # fmt: skip
    outcomes = [json.loads(f[b"outcome"]) for _, f in redis_client.xrange("mailroom:outcomes")]
    assert [(o["status"], o["reason"]) for o in outcomes] == [
        ("sent", None), ("bounced", "permanent"),
    ]  # fmt: skip
    # Postfix delivered its bounce to mailroom over LMTP, and mailroom said so.
    log = postfix.log()
    assert f"to=<{UNKNOWN}@example.com>" in log and "status=bounced" in log
    assert "relay=127.0.0.1[127.0.0.1]:" in log and "status=sent (250 2.0.0 OK)" in log
    received = [json.loads(line) for line in stderr.splitlines() if "bounce.received" in line]
    assert [(r["via"], r["kind"], r["recorded"]) for r in received] == [("lmtp", "dsn", 1)]
