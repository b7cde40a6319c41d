"""End-to-end throughput and latency against the raw limit of the SMTP sink,
measured in one run on real Redis, PostgreSQL and an aiosmtpd sink.

    .venv/bin/python -m tests.bench [--mails 1000] [--processes 2] [--threads 8]

1. Raw limit: the sink's intake when mailroom's SMTP transport sends prebuilt
   mails to it from as many threads as the workers have, nothing else involved.
2. End to end: `mailroom worker` processes, fed sign-up events by XADD; the
   clock runs from the first publish to the last mail's arrival.  Latency is
   each mail's arrival minus its event's publish.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import redis

from domain.messages import build_message, message_id_for
from tests.conftest import base_env
from tests.servers import PostgresServer, RedisServer, SMTPSink
from workers import db
from workers.settings import load_settings
from workers.transports.smtp import SMTPTransport

SENDER = "no-reply@notes.example.com"


def raw_limit(sink: SMTPSink, mails: int, threads: int) -> float:
    transport = SMTPTransport("127.0.0.1", sink.port, security="none")
    message = build_message(
        sender=SENDER, recipient="raw@example.com", subject="raw", text="x" * 600,
        html="<p>" + "x" * 1500 + "</p>", message_id=message_id_for(SENDER),
        date=datetime.now(UTC),
    )  # fmt: skip
    started = time.perf_counter()

    def send(_):
        transport.send(message, sender=SENDER, recipient="raw@example.com")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(mails)))
    sink.wait_for(mails, timeout=600)
    elapsed = time.perf_counter() - started
    transport.close()
    return mails / elapsed


def end_to_end(env: dict, sink: SMTPSink, mails: int, processes: int, threads: int) -> dict:
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "mailroom"), "worker", "-p", str(processes),
         "-t", str(threads)],
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        time.sleep(3)  # let the processes boot
        published: dict[str, float] = {}
        started = time.time()
        pipe = client.pipeline(transaction=False)
        for n in range(mails):
            address = f"user{n}@example.com"
            event = {"version": 1, "id": str(uuid.uuid4()), "type": "user.signup_requested",
                     "source": "bench", "occurred_at": datetime.now(UTC).isoformat(),
                     "data": {"email": address}}  # fmt: skip
            pipe.xadd("mailroom:events", {"event": json.dumps(event)})
            published[address] = time.time()
            if n % 100 == 99:
                pipe.execute()
        pipe.execute()
        received = sink.wait_for(mails, timeout=600)
        finished = max(m.arrived for m in received)
        latencies = sorted(m.arrived - published[m["To"]] for m in received)
        return {
            "per_second": mails / (finished - started),
            "p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
            "max_ms": 1000 * latencies[-1],
        }
    finally:
        worker.terminate()
        worker.wait(60)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    redis_server, postgres = RedisServer(), PostgresServer()
    sink = SMTPSink(enable_SMTPUTF8=False)
    try:
        url = postgres.create_database("mailroom_bench")
        db.upgrade(load_settings({"DATABASE_URL": url}).sqlalchemy_url)
        env = base_env(redis_server.url, url, sink.port)
        limit = raw_limit(sink, args.mails, args.processes * args.threads)
        sink.reset()
        result = end_to_end(env, sink, args.mails, args.processes, args.threads)
    finally:
        sink.stop()
        postgres.stop()
        redis_server.stop()
    print(f"mails: {args.mails}; workers: {args.processes} processes x {args.threads} threads")
    print(f"raw SMTP sink limit: {limit:.0f} mails/s")
    print(f"end to end: {result['per_second']:.0f} mails/s "
          f"({result['per_second'] / limit:.0%} of the raw limit)")  # fmt: skip
    print(f"latency publish -> arrival: p50 {result['p50_ms']:.0f} ms, "
          f"p95 {result['p95_ms']:.0f} ms, max {result['max_ms']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
