"""The Node.js webhook receiver of examples/node, as an app would run it: real mail's
outcomes arrive verified by the npm `standardwebhooks` package, a repeat is taken but
not acted on twice, and a forged request is refused."""

import json
import subprocess
import time
from datetime import UTC, datetime

import pytest
import requests
import standardwebhooks

from tests.conftest import make_event
from tests.e2e.test_webhooks import SECRET
from tests.node import install_example, node_env
from tests.servers import free_port


@pytest.fixture(scope="module")
def node_example(tmp_path_factory):
    return install_example(tmp_path_factory.mktemp("checkout"))


@pytest.fixture
def node_receiver(node_example):
    port = free_port()
    process = subprocess.Popen(
        ["node", "receive-webhooks.js"],
        cwd=node_example,
        env=node_env(MAILROOM_WEBHOOK_SECRET=SECRET, PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr.readline().strip() == f"listening on {port}"
    yield process, f"http://127.0.0.1:{port}/hooks/mailroom"
    process.terminate()
    process.wait(timeout=10)


def test_the_node_receiver_takes_real_outcomes_once_and_refuses_a_forgery(
    make_mailroom, smtp_sink, node_receiver, tmp_path
):
    process, url = node_receiver
    apps = tmp_path / "apps.toml"
    apps.write_text(f'[apps.notes]\nwebhook_url = "{url}"\nwebhook_secret = "{SECRET}"\n')
    mailroom = make_mailroom(MAILROOM_APPS_FILE=str(apps))
    mailroom.publish(make_event(data={"email": "ada@example.com"}))
    smtp_sink.wait_for(1)

    [received] = [json.loads(process.stdout.readline())]
    [email] = mailroom.emails()
    assert received["id"].startswith("msg_")
    assert received["type"] == "email.sent"
    assert {k: received["data"][k] for k in ("email_id", "app", "kind", "status")} == {
        "email_id": str(email.id), "app": "notes", "kind": "signup", "status": "sent",
    }  # fmt: skip

    # What an attacker can send: the same body under a made-up signature.
    body = json.dumps({"type": "email.bounced", "timestamp": "", "data": received["data"]})
    forged = requests.post(url, data=body, timeout=5, headers={
        "webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl", "content-type": "application/json",
    })  # fmt: skip
    assert forged.status_code == 400
    # The same webhook again (a retry whose answer was lost): taken, not acted on twice.
    again = json.dumps({"type": received["type"], "timestamp": "", "data": received["data"]})
    now = datetime.now(UTC)
    repeat = requests.post(url, data=again, timeout=5, headers={
        "webhook-id": received["id"], "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(SECRET).sign(received["id"], now, again),
    })  # fmt: skip
    assert repeat.status_code == 204
    process.terminate()
    out, err = process.communicate(timeout=10)
    assert out == ""  # nothing more was taken
    assert "refused: No matching signature found" in err
