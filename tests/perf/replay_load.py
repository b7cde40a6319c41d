"""Live sign-ups' latency while an admin replays 500 dead letters.

    .venv/bin/python -m tests.perf.replay_load        # about three minutes here

Real Redis, PostgreSQL and an aiosmtpd sink on loopback, `mailroom worker -p 2
-t 8`.  500 sign-ups are refused (550) into dead letters; then sign-ups arrive
at 20/s for 15 s (idle), and again for 30 s while `mailroom failed replay --all
--force` runs at its default rate and at `--rate 20`.  Prints publish-to-server
p50/p95/max of the live mail in each phase, as JSON.
"""

import json
import os
import signal
import subprocess
import time

import redis
import sqlalchemy as sa

from tests.commands import MAILROOM
from tests.conftest import base_env, make_event
from tests.perf.bench import Sink
from tests.servers import PostgresServer, RedisServer, wait_until
from workers import db
from workers.settings import load_settings

#: Dead letters replayed per phase.
DEAD = 500
#: Live sign-ups per second.
LIVE_RATE = 20


class RefusingSink(Sink):
    """The benchmark's sink, answering 550 to the recipients in ``refuse``."""

    refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def publish(client: redis.Redis, address: str) -> None:
    client.xadd("mailroom:events", {"event": json.dumps(make_event(data={"email": address}))})


def live(client, sink: RefusingSink, prefix: str, seconds: float) -> dict:
    sent: dict[str, float] = {}
    end, n = time.time() + seconds, 0
    while time.time() < end:
        address = f"{prefix}{n}@example.com"
        sent[address] = time.time()
        publish(client, address)
        n += 1
        time.sleep(1 / LIVE_RATE)
    wait_until(lambda: set(sent) <= {r for r, _ in sink.arrivals}, timeout=90, what="live mail")
    arrived = dict(sink.arrivals)
    latencies = sorted(arrived[a] - t for a, t in sent.items())

    def ms(share: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000, 1)

    return {"mails": len(latencies), "p50_ms": ms(0.5), "p95_ms": ms(0.95), "max_ms": ms(1)}


def dead_letters(client, sink: RefusingSink, engine, prefix: str) -> None:
    sink.refuse = {f"{prefix}{n}@example.com" for n in range(DEAD)}
    for address in sorted(sink.refuse):
        publish(client, address)
    count = sa.text("SELECT count(*) FROM failed_emails WHERE status = 'dead'")

    def filed() -> bool:
        with engine.connect() as conn:
            return conn.execute(count).scalar() >= DEAD

    wait_until(filed, timeout=180, what=f"{DEAD} dead letters")
    sink.refuse = set()


def main() -> None:
    redis_server, postgres, sink = RedisServer(), PostgresServer(), RefusingSink()
    worker = None
    try:
        url = postgres.create_database("replayload")
        settings = load_settings({"DATABASE_URL": url})
        db.upgrade(settings.sqlalchemy_url)
        engine = sa.create_engine(settings.sqlalchemy_url)
        env = {**os.environ, **base_env(redis_server.url, url, sink.port), "LOG_LEVEL": "WARNING"}
        worker = subprocess.Popen(
            [MAILROOM, "worker", "-p", "2", "-t", "8"], env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(redis_server.url)
        time.sleep(5)
        results = {}
        phases = (("idle", None), ("replay_default_rate", []), ("replay_rate_20", ["--rate", "20"]))
        for phase, extra in phases:
            if extra is None:
                dead_letters(client, sink, engine, "dead")
                results[phase] = live(client, sink, phase, 15)
                continue
            if phase != "replay_default_rate":
                dead_letters(client, sink, engine, phase)
            replay = subprocess.Popen(
                [MAILROOM, "failed", "replay", "--all", "--force", "--json", *extra],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            results[phase] = live(client, sink, phase, 30)
            out, _ = replay.communicate(timeout=180)
            results[phase]["replayed"] = json.loads(out)["replayed"]
        for phase in ("replay_default_rate", "replay_rate_20"):
            results[phase]["p95_vs_idle"] = round(
                results[phase]["p95_ms"] / results["idle"]["p95_ms"], 2
            )
        print(json.dumps(results, indent=1))
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(90)
        sink.stop()
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
