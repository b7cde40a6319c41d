"""`mailroom emails list | show` on real servers: support finds whether a mail
went out, and what became of it, without SQL and without ever seeing a code."""

import json
import re
import uuid

from sqlalchemy import event, text

from domain.addresses import recipient_tag
from tests.commands import run
from tests.conftest import TOKEN_SECRET, make_event, reset
from tests.mail import secrets_in, token_in
from tests.servers import wait_until
from workers import db
from workers.settings import load_settings
from workers.store import email_views
from workers.store.tables import Email

HEADER = [
    "ID", "CREATED", "STATUS", "KIND", "APP", "RECIPIENT", "TRIES", "TRANSPORT", "SENT",
    "REPLAY_OF", "DEAD_LETTER", "ERROR",
]  # fmt: skip
#: A Postfix-like acceptance that names the relay's queue id.
ACCEPTED = "250 2.0.0 Ok: queued as 4Zb3Kq1xyz"


def rows_of(result) -> list[dict]:
    """The table's rows by column (cells are at least two spaces apart)."""
    header, *lines = result.stdout.splitlines()
    assert header.split() == HEADER
    return [dict(zip(HEADER, re.split(r"\s{2,}", line), strict=True)) for line in lines]


def listed(env, *args) -> list[dict]:
    result = run(env, "emails", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tag(address: str) -> str:
    return recipient_tag(TOKEN_SECRET.encode(), address)


def field(label: str, value) -> str:
    """A line of `emails show`."""
    return f"{label + ':':<26}{value}"


def test_support_finds_whether_the_reset_mail_went_out(mailroom, smtp_sink, env):
    assert run(env, "emails", "list").stderr.strip() == "no emails"
    smtp_sink.reply = ACCEPTED  # the sink files what it accepts this way under "rejected"
    mailroom.publish(reset(email="ada@example.com"))
    mailroom.publish(make_event(data={"email": "grace@example.com", "name": "Zebulon"}))
    mailroom.wait_for_status("sent", 2)
    mails = {m["To"]: m for m in smtp_sink.rejected}

    table = run(env, "emails", "list", "--to", "ADA@Example.COM")
    assert table.returncode == 0, table.stderr
    [row] = rows_of(table)
    assert (row["STATUS"], row["KIND"], row["APP"], row["TRIES"], row["TRANSPORT"]) == (
        "sent", "password_reset", "notes", "1", "smtp",
    )  # fmt: skip
    assert row["RECIPIENT"] == f"a***@example.com#{tag('ada@example.com')}"
    assert (row["DEAD_LETTER"], row["ERROR"]) == ("-", "-")
    assert table.stderr.strip() == "rows 1-1, newest first"

    everything = run(env, "emails", "list")
    assert {r["RECIPIENT"].split("#")[0] for r in rows_of(everything)} == {
        "a***@example.com", "g***@example.com",
    }  # fmt: skip
    assert "ada@" not in everything.stdout and "grace@" not in everything.stdout

    [ada] = listed(env, "--to", "ada@example.com")
    assert ada["email_id"] == row["ID"]
    assert (ada["recipient"], ada["recipient_tag"]) == ("ada@example.com", tag("ada@example.com"))
    assert (ada["provider_id"], ada["transport"], ada["attempts"]) == ("4Zb3Kq1xyz", "smtp", 1)
    assert ada["message_id"] == mails["ada@example.com"]["Message-ID"]
    assert [step["happened"] for step in ada["history"]] == ["requested", "queued", "sent"]
    assert ada["history"][-1]["detail"] == "attempt 1, via smtp, provider id 4Zb3Kq1xyz"
    assert ada["history"][-1]["at"] == ada["sent_at"]

    shown = run(env, "emails", "show", row["ID"])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert field("recipient", "ada@example.com") in lines
    assert field("recipient_tag", tag("ada@example.com")) in lines
    assert field("message_id", ada["message_id"]) in lines
    assert field("provider_id", "4Zb3Kq1xyz") in lines
    assert lines[lines.index("history:") + 1].split()[2:] == ["requested"]
    assert lines[-1].split()[2:] == ["sent", "attempt", "1,", "via", "smtp,", "provider", "id",
                                     "4Zb3Kq1xyz"]  # fmt: skip
    assert token_in(mails["ada@example.com"]) not in shown.stdout
    assert json.loads(run(env, "emails", "show", row["ID"], "--json").stdout) == ada

    # The signup's code and link are not kept, and its template data is not shown.
    [grace] = listed(env, "--to", "grace@example.com")
    for args in (["emails", "show", grace["email_id"]], ["emails", "list", "--json"]):
        output = run(env, *args).stdout
        assert all(secret not in output for secret in secrets_in(mails["grace@example.com"]))
        assert "Zebulon" not in output


def test_a_refused_mail_shows_its_dead_letter_and_its_replay(mailroom, smtp_sink, env):
    smtp_sink.reply = "550 5.1.1 mailbox unavailable"
    mailroom.publish(make_event())
    [dead] = mailroom.wait_for_failed(1)
    smtp_sink.reply = None

    [row] = rows_of(run(env, "emails", "list", "--status", "failed"))
    assert (row["STATUS"], row["DEAD_LETTER"]) == ("failed", f"#{dead.id}")
    assert row["ERROR"].startswith("SMTP 550")

    assert run(env, "failed", "replay", str(dead.id), "--force").returncode == 0
    smtp_sink.wait_for(1)
    wait_until(lambda: mailroom.rows(Email, Email.status == "sent"), what="the replay to be sent")

    copy, original = rows_of(run(env, "emails", "list", "--to", "ada@example.com"))
    assert (copy["STATUS"], copy["REPLAY_OF"], copy["DEAD_LETTER"]) == ("sent", f"#{dead.id}", "-")
    assert (original["ID"], original["STATUS"]) == (row["ID"], "failed")

    record = json.loads(run(env, "emails", "show", row["ID"], "--json").stdout)
    assert record["dead_letter"]["id"] == dead.id
    assert (record["dead_letter"]["reason"], record["dead_letter"]["status"]) == (
        "rejected", "replayed",
    )  # fmt: skip
    assert record["dead_letter"]["replayed_as"] == copy["ID"]
    steps = [(step["happened"], step["detail"]) for step in record["history"]]
    assert [happened for happened, _ in steps] == [
        "requested", "queued", "dead_lettered", "replayed",
    ]  # fmt: skip
    assert steps[2][1].startswith(f"#{dead.id} rejected after 1 attempt: SMTP 550")
    assert steps[3][1] == f"as email {copy['ID']} (sent)"

    replay = json.loads(run(env, "emails", "show", copy["ID"], "--json").stdout)
    assert replay["replay_of"] == dead.id
    assert replay["history"][1]["detail"] == f"a replay of dead letter #{dead.id}"
    shown = run(env, "emails", "show", row["ID"]).stdout.splitlines()
    assert field("dead_letter_reason", "rejected") in shown
    assert field("dead_letter_replayed_as", copy["ID"]) in shown


def test_a_mail_waiting_for_its_retry_says_why_and_when(make_mailroom, smtp_sink, env):
    mailroom = make_mailroom(MAILROOM_RETRY_MIN_BACKOFF="60", MAILROOM_RETRY_MAX_BACKOFF="120")
    smtp_sink.reply = "451 4.3.0 try again later"
    mailroom.publish(make_event())
    wait_until(
        lambda: mailroom.rows(Email, Email.status == "queued", Email.attempts == 1),
        what="the first attempt to fail",
    )
    assert run(env, "emails", "list", "--status", "sent").stderr.strip() == "no emails"
    [waiting] = listed(env, "--status", "queued")
    assert waiting["last_error"].startswith("SMTP 451")
    assert waiting["next_attempt_at"] > waiting["created_at"]
    retrying = waiting["history"][-1]
    assert (retrying["happened"], retrying["at"]) == ("retrying", None)
    assert retrying["detail"].startswith("1 attempt failed, the last: SMTP 451")
    assert retrying["detail"].endswith(
        f"next due at {waiting['next_attempt_at'][:19].replace('T', ' ')}"
    )
    shown = run(env, "emails", "show", waiting["email_id"]).stdout.splitlines()
    assert shown[-1].split()[:6] == ["(time", "not", "kept)", "retrying", "1", "attempt"]


def test_rate_limited_mail_and_paging(mailroom, smtp_sink, env):
    for _ in range(3):
        mailroom.publish(make_event())
    wait_until(
        lambda: len(mailroom.rows(Email, Email.status.in_(["sent", "suppressed"]))) == 3,
        what="three requests to settle",
    )
    mailroom.publish(make_event())
    wait_until(
        lambda: mailroom.rows(Email, Email.suppressed_reason == "rate_limited"),
        what="the fourth request to be rate limited",
    )

    [limited] = rows_of(run(env, "emails", "list", "--limit", "1"))
    assert limited["STATUS"] == "suppressed (rate_limited)"
    record = json.loads(run(env, "emails", "show", limited["ID"], "--json").stdout)
    assert [(s["happened"], s["detail"]) for s in record["history"]] == [
        ("requested", None), ("suppressed", "rate_limited"),
    ]  # fmt: skip
    assert record["history"][1]["at"] == record["created_at"]

    first = run(env, "emails", "list", "--limit", "3")
    assert first.stderr.strip() == "rows 1-3, newest first; next page: --offset 3"
    last = run(env, "emails", "list", "--limit", "3", "--offset", "3")
    assert last.stderr.strip() == "rows 4-4, newest first"
    ids = [r["ID"] for r in rows_of(first) + rows_of(last)]
    assert ids == [r["email_id"] for r in listed(env, "--limit", "0")]
    assert len(set(ids)) == 4
    gone = run(env, "emails", "list", "--offset", "4")
    assert (gone.returncode, gone.stderr.strip()) == (0, "no emails at offset 4")


def test_filters_and_usage_errors(mailroom, smtp_sink, env):
    ada, grace = make_event(), make_event(data={"email": "grace@example.com", "name": "Grace"})
    mailroom.publish(ada)
    mailroom.publish(grace)
    mailroom.wait_for_status("sent", 2)

    [only] = listed(env, "--event", grace["id"])
    assert (only["recipient"], only["event_id"]) == ("grace@example.com", grace["id"])
    assert len(listed(env, "--app", "notes", "--since", "1h")) == 2
    assert listed(env, "--app", "billing") == []
    assert listed(env, "--since", "2099-01-01") == []
    assert listed(env, "--to", "nobody@example.com") == []

    for args, option in [
        (["--to", "not an address"], "'--to'"),
        (["--since", "yesterday"], "'--since'"),
        (["--status", "lost"], "'--status'"),
        (["--event", "42"], "'--event'"),
        (["--limit", "-1"], "'--limit'"),
    ]:
        result = run(env, "emails", "list", *args)
        assert result.returncode == 2 and option in result.stderr, (args, result.stderr)
    assert run(env, "emails", "show", "42").returncode == 2
    unknown = uuid.uuid4()
    missing = run(env, "emails", "show", str(unknown))
    assert (missing.returncode, missing.stderr.strip()) == (1, f"Error: no email with id {unknown}")


def test_lookups_walk_an_index(clean_db):
    """With sequential scans priced out, PostgreSQL still plans a scan of the
    table unless an index can serve the lookup."""
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    engine = db.make_engine(load_settings({"DATABASE_URL": clean_db}).sqlalchemy_url)
    with engine.connect() as conn:
        # A table the size of a real one (rolled back below), so the planner
        # weighs the indexes by real statistics, not by what earlier tests left.
        conn.execute(text(
            "INSERT INTO emails (id, app, kind, locale, recipient, recipient_key, context,"
            " status, attempts, deadline, next_attempt_at, created_at)"
            " SELECT gen_random_uuid(), 'notes', 'signup', 'en', 'u' || g || '@example.com',"
            " 'u' || g || '@example.com', '{}', 'sent', 1, now(), now(),"
            " now() - g * interval '1 second' FROM generate_series(1, 5000) g"
        ))  # fmt: skip
        conn.execute(text("ANALYZE emails"))
        event.listen(conn, "before_cursor_execute", capture)
        email_views.page(conn, email_views.Filters(recipient_key="ada@example.com"), limit=51)
        email_views.page(conn, email_views.Filters(), limit=51)
        email_views.page(conn, email_views.Filters(app="notes"), limit=51)  # the API's
        event.remove(conn, "before_cursor_execute", capture)
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plans = [
            "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}", params))
            for sql, params in statements
        ]
    engine.dispose()
    assert "ix_emails_recipient" in plans[0], plans[0]
    assert "ix_emails_created" in plans[1], plans[1]
    assert "Seq Scan" not in plans[2], plans[2]
