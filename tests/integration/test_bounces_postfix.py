"""A real MTA's bounce, end to end: mailroom relays a sign-up through Postfix to a
local user that does not exist; Postfix accepts it, local delivery fails, and
Postfix's own delivery status notification goes to the mail's VERP return path,
which its transport map leads over LMTP to `mailroom bounces serve`."""

import json
import os
import pwd
import shutil
import uuid

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
        self.bounce_domain = bounce_domain
        self.lmtp_port = lmtp_port
        super().__init__(certificates=None)

    def routing(self, user) -> str:
        # The operator's line: the bounce domain's mail goes to `mailroom bounces serve`.
        transport = self.conf / "transport"
        transport.write_text(f"{self.bounce_domain} lmtp:inet:127.0.0.1:{self.lmtp_port}\n")
        # Every local address is taken on SMTP: the unknown one bounces at delivery,
        # so Postfix writes a DSN rather than answering 550 to mailroom.
        return f"""mydestination = example.com
local_recipient_maps =
alias_maps =
alias_database =
transport_maps = texthash:{transport}
"""


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
