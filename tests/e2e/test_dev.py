"""The embedded default, as a newcomer meets it: `mailroom dev --demo` in an empty folder."""

import json
import os
import signal
import subprocess
from email import message_from_bytes, policy

from tests.commands import MAILROOM, run
from tests.servers import wait_until


def test_dev_demo_writes_mail_to_the_outbox_and_serves_other_commands(tmp_path):
    env = {"HOME": str(tmp_path), "LOG_FORMAT": "console"}
    process = subprocess.Popen(
        [MAILROOM, "dev", "--demo"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    outbox = tmp_path / "outbox"
    try:
        mails = wait_until(
            lambda: len(found := sorted(outbox.glob("*.eml"))) >= 6 and found,
            timeout=60,
            what="the demo's six mails",
        )
        messages = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in mails]
        subjects = sorted(m["Subject"] for m in messages)
        assert subjects == [
            "A change of your Mailroom email address was requested",
            "Ada invites you to join Analytical Engines",
            "Confirm your new Mailroom email address",
            "Reset your Mailroom password",
            "Your Mailroom login code",
            "Your Mailroom verification code",
        ]
        assert all(m.get_body(("html",)) is not None for m in messages)

        # Another process finds the same embedded Redis and SQLite file.
        published = subprocess.run(
            [MAILROOM, "publish", "user.signup_requested", "--data", '{"email": "b@example.org"}'],
            cwd=tmp_path, env={"PATH": os.environ["PATH"], **env},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        wait_until(lambda: len(list(outbox.glob("*.eml"))) == 7, timeout=30, what="one more mail")
        listed = subprocess.run(
            [MAILROOM, "failed", "list", "--json"],
            cwd=tmp_path, env={"PATH": os.environ["PATH"], **env},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    summaries = [line for line in output.splitlines() if "email.sent" in line]
    assert len(summaries) == 7
    assert all(" to=" in line and "outbox/" in line for line in summaries)
    assert "ada@" not in output
    assert "Traceback" not in output
    assert (tmp_path / ".mailroom" / "mailroom.db").exists()

    # Once dev has stopped, nothing pretends to publish into the void.
    orphan = subprocess.run(
        [MAILROOM, "publish", "user.signup_requested", "--data", '{"email": "c@example.org"}'],
        cwd=tmp_path, env={"PATH": os.environ["PATH"], **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert orphan.returncode == 3
    assert "REDIS_URL: is not set and no `mailroom dev` is running here" in orphan.stderr


def test_dev_refuses_a_bad_setting_in_one_line(tmp_path):
    result = run({"MAILROOM_TRANSPORT": "pigeon"}, "dev", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "mailroom: configuration error: MAILROOM_TRANSPORT: must list file, smtp, ses or gmail, "
        "each at most once (e.g. `ses,smtp`)"
    )
    assert list(tmp_path.iterdir()) == []
