"""No code, token or link that was mailed is stored anywhere: not in a table, not
in a Redis key, not in a log line."""

import re

from sqlalchemy import text

from tests.conftest import BASE_URL, make_event
from tests.mail import secrets_in
from tests.servers import wait_until
from workers.store import dead_letters
from workers.store.tables import Base


def dump_database(mailroom) -> str:
    chunks = []
    with mailroom.rt.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                chunks.append(" ".join(str(value) for value in row))
    return "\n".join(chunks)


def dump_redis(client) -> str:
    chunks = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        read = {
            "string": client.get,
            "hash": client.hgetall,
            "list": lambda k: client.lrange(k, 0, -1),
            "set": client.smembers,
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            "stream": client.xrange,
        }[kind]
        value = read(key)
        chunks.append(f"{key!r} {value!r}")
    return "\n".join(chunks)


def test_mailed_secrets_are_nowhere_at_rest(mailroom, smtp_sink):
    # Mail that is sent, re-sent by replay, refused, and left queued in Redis.
    mailroom.publish(make_event(data={"email": "ada@example.com", "name": "Ada"}))
    smtp_sink.wait_for(1)
    smtp_sink.reply = "550 5.1.1 no such user"
    mailroom.publish(make_event(data={"email": "grace@example.com"}))
    [failed] = mailroom.wait_for_failed(1)
    smtp_sink.reply = None
    with mailroom.rt.engine.begin() as conn:
        new_id = dead_letters.replay_email(
            conn, dead_letters.get(conn, failed.id), mailroom.rt.clock()
        )
    mailroom.rt.dispatch.delivery(new_id)
    messages = smtp_sink.wait_for(2)
    mailroom.wait_for_status("sent", 2)

    mailed = [secrets_in(m) for m in messages + smtp_sink.rejected]
    assert len(mailed) == 3
    # Everything that was in the mails and must stay only there.
    needles = []
    for _code, token in mailed:
        needles += [token, f"{BASE_URL}/verify-email?token={token}"]
    codes = [code for code, _ in mailed]

    haystacks = {
        "database": dump_database(mailroom),
        "redis": dump_redis(mailroom.redis),
        "logs": mailroom.log.getvalue(),
    }
    assert "ada@example.com" in haystacks["database"]  # the dump is real
    assert haystacks["redis"] and haystacks["logs"]
    for where, haystack in haystacks.items():
        for needle in needles:
            assert needle not in haystack, f"a mailed token or link is in the {where}"
        for code in codes:
            # Not as a number of its own (fractions of seconds are not codes).
            assert not re.search(rf"(?<![\d.]){code}(?!\d)", haystack), f"a code is in the {where}"


def test_log_lines_mask_addresses(mailroom, smtp_sink):
    mailroom.publish(make_event(data={"email": "ada.lovelace@example.com"}))
    smtp_sink.wait_for(1)
    wait_until(
        lambda: any(line["event"] == "email.sent" for line in mailroom.log_lines()),
        what="the email.sent line",
    )
    assert "ada.lovelace@" not in mailroom.log.getvalue()
    assert any(line.get("to") == "a***@example.com" for line in mailroom.log_lines())
