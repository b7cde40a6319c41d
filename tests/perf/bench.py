"""mailroom's benchmark: the SMTP server's limit, end-to-end throughput, latency at a
fixed offered rate, and what each mail costs, in one run on real Redis, PostgreSQL
and an SMTP server (an aiosmtpd sink, or Postfix with ``--target postfix``).

    .venv/bin/python -m tests.perf.bench [--events 2000] [--processes 2] [--threads 8]
        [--rate R] [--duration 20] [--target sink|postfix] [--json FILE]

1. Limit: plain smtplib over one persistent connection, sending a prebuilt
   sign-up mail (rendered once by mailroom's own templates) as fast as it can.
2. Throughput: ``--events`` sign-up events XADDed at once; the clock runs from the
   first publish until the server has accepted that many mails.
3. Latency: events published one by one at ``--rate`` (default: half the measured
   throughput) for ``--duration`` seconds; publish to acceptance, p50/p95/p99.
4. Cost of the throughput phase per mail: worker CPU (master and children, from
   /proc), PostgreSQL statements (pg_stat_statements) and transactions, Redis
   commands (INFO commandstats; the benchmark's own XADDs included), the CPU of
   the benchmark process itself (the sink's SMTP server runs in it) and of the
   whole machine (/proc/stat: how busy its cores were), and the peak resident
   memory of each worker process.
5. Errors (dead letters), duplicates (mails beyond one per event) and losses.
"""

import argparse
import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis
from aiosmtpd.controller import Controller

from domain.messages import as_bytes, build_message, message_id_for
from domain.samples import sample_context
from tests.conftest import base_env
from tests.perf.probes import Probe
from tests.servers import PostgresServer, RedisServer, free_port, wait_until
from workers import db
from workers.broker import NAMESPACE
from workers.ingress import STREAM
from workers.rendering import Renderer
from workers.settings import load_settings

SENDER = "no-reply@notes.example.com"
MAILROOM = str(Path(sys.executable).parent / "mailroom")
#: Events sent first and not counted: connections, caches and JIT-free warm paths.
WARMUP_EVENTS = 50


class Sink:
    """An aiosmtpd server that records only who each mail was for and when it came:
    parsing nothing, so it spends little of the CPU the workers need."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        with self.lock:
            self.arrivals.extend((rcpt, now) for rcpt in envelope.rcpt_tos)
        return "250 OK"

    def count(self) -> int:
        return len(self.arrivals)

    def take(self) -> list[tuple[str, float]]:
        with self.lock:
            taken, self.arrivals = self.arrivals, []
        return taken

    def stop(self) -> None:
        self.controller.stop()


class PostfixTarget:
    """Postfix on loopback delivering to a Maildir; a mail counts when its file lands."""

    def __init__(self) -> None:
        from tests.peers import Certificates, Postfix

        self.dir = Path(tempfile.mkdtemp(prefix="mailroom-bench-certs-"))
        self.postfix = Postfix(Certificates(self.dir))
        self.port = self.postfix.port
        self.seen: set[str] = set()

    def _new(self) -> list[Path]:
        inbox = self.postfix.mail / "inbox" / "new"
        return [p for p in inbox.iterdir() if p.name not in self.seen] if inbox.exists() else []

    def count(self) -> int:
        return len(self._new())

    def take(self) -> list[tuple[str, float]]:
        taken = []
        for path in self._new():
            self.seen.add(path.name)
            head = path.read_bytes().split(b"\n\n", 1)[0].decode("utf-8", "replace")
            to = next(
                (line[4:].strip() for line in head.splitlines() if line.lower().startswith("to: ")),
                "",
            )
            taken.append((to, path.stat().st_mtime))
        return taken

    def stop(self) -> None:
        self.postfix.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def signup_mail() -> bytes:
    """A sign-up mail as mailroom renders it, with a sample code and link."""
    context = {**sample_context("signup"), "product": "Notes", "logo_url": None,
               "support_email": None}  # fmt: skip
    rendered = Renderer().render("signup", "en", context)
    return as_bytes(build_message(
        sender=SENDER, sender_name="Notes", recipient="limit@example.com",
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=message_id_for(SENDER), date=datetime.now(UTC),
    ))  # fmt: skip


def limit(target, mails: int) -> float:
    message = signup_mail()
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", target.port) as client:
        for _ in range(mails):
            client.sendmail(SENDER, ["limit@example.com"], message)
    wait_until(lambda: target.count() >= mails, 600, what="the limit run's mails")
    elapsed = time.perf_counter() - started
    target.take()
    return mails / elapsed


def event(address: str) -> str:
    return json.dumps({"version": 1, "id": str(uuid.uuid4()), "type": "user.signup_requested",
                       "source": "bench", "occurred_at": datetime.now(UTC).isoformat(),
                       "data": {"email": address}})  # fmt: skip


def burst(client: redis.Redis, prefix: str, count: int) -> dict[str, float]:
    published = {}
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        address = f"{prefix}{n}@example.com"
        pipe.xadd(STREAM, {"event": event(address)})
        published[address] = time.time()
        if n % 200 == 199:
            pipe.execute()
    pipe.execute()
    return published


def paced(client: redis.Redis, rate: float, duration: float) -> dict[str, float]:
    published, interval = {}, 1.0 / rate
    started = time.perf_counter()
    for n in range(int(rate * duration)):
        delay = started + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # the offered rate itself: one event every interval
        address = f"paced{n}@example.com"
        client.xadd(STREAM, {"event": event(address)})
        published[address] = time.time()
    return published


def collect(target, published: dict[str, float], timeout: float) -> dict:
    """Wait for one mail per event (or the timeout); latencies, duplicates, losses."""
    arrivals: dict[str, list[float]] = {}
    deadline = time.monotonic() + timeout
    while True:
        for rcpt, at in target.take():
            arrivals.setdefault(rcpt.lower(), []).append(at)
        missing = [a for a in published if a not in arrivals]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    latencies = sorted(min(arrivals[a]) - t for a, t in published.items() if a in arrivals)
    return {
        "arrivals": arrivals,
        "latencies": latencies,
        "duplicates": sum(len(v) - 1 for a, v in arrivals.items() if a in published),
        "lost": len([a for a in published if a not in arrivals]),
    }


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))] if values else float("nan")


def start_workers(env: dict, processes: int, threads: int, client: redis.Redis, log: Path):
    with log.open("w") as out:
        worker = subprocess.Popen(
            [MAILROOM, "worker", "-p", str(processes), "-t", str(threads)],
            # Logging as shipped (INFO, JSON): one line per event and per mail is
            # part of what a mail costs.
            env={**os.environ, **env, "LOG_LEVEL": "INFO"},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def consumers() -> int:
        # Each worker process's broker heartbeats once it consumes.
        return client.zcard(f"{NAMESPACE}:__heartbeats__")

    try:
        wait_until(lambda: consumers() >= processes, 60, what="every worker process")
    except AssertionError:
        worker.terminate()
        raise AssertionError(f"the workers did not start:\n{log.read_text()[-3000:]}") from None
    return worker


def run(args) -> dict:
    redis_server = RedisServer()
    postgres = PostgresServer("shared_preload_libraries=pg_stat_statements")
    target = worker = None
    try:
        target = PostfixTarget() if args.target == "postfix" else Sink()
        url = postgres.create_database("mailroom_bench")
        db.upgrade(load_settings({"DATABASE_URL": url}).sqlalchemy_url)
        # Counted as in production: every process writes its metrics.
        metrics = {"MAILROOM_METRICS_PORT": str(free_port()), "MAILROOM_METRICS_HOST": "127.0.0.1"}
        env = {**base_env(redis_server.url, url, target.port), "LOG_FORMAT": "json", **metrics}
        result = {"events": args.events, "processes": args.processes, "threads": args.threads,
                  "target": args.target, "limit_per_s": limit(target, args.events)}  # fmt: skip

        client = redis.Redis.from_url(redis_server.url)
        worker = start_workers(env, args.processes, args.threads, client, args.worker_log)
        probe = Probe(url, redis_server.url, worker.pid, postgres.pid(), redis_server.process.pid)
        collect(target, burst(client, "warm", WARMUP_EVENTS), 120)

        before = probe.read()
        started = time.time()
        published = burst(client, "user", args.events)
        outcome = collect(target, published, args.timeout)
        finished = max((min(v) for v in outcome["arrivals"].values()), default=started)
        cost = probe.read() - before
        mailed = args.events - outcome["lost"]
        throughput = mailed / max(finished - started, 1e-9)
        result.update(
            throughput_per_s=throughput,
            share_of_limit=throughput / result["limit_per_s"],
            cpu_ms_per_mail=1000 * cost.cpu / max(mailed, 1),
            postgres_cpu_ms_per_mail=1000 * cost.postgres_cpu / max(mailed, 1),
            redis_cpu_ms_per_mail=1000 * cost.redis_cpu / max(mailed, 1),
            # The sink's SMTP server (and this process's waiting) when it is the target.
            bench_cpu_ms_per_mail=1000 * cost.own_cpu / max(mailed, 1),
            machine_cpu_ms_per_mail=1000 * cost.machine_cpu / max(mailed, 1),
            machine_busy_share=cost.machine_cpu / ((finished - started) * os.cpu_count()),
            statements_per_mail=cost.statements / max(mailed, 1),
            transactions_per_mail=cost.transactions / max(mailed, 1),
            redis_commands_per_mail=cost.redis_commands / max(mailed, 1),
            duplicates=outcome["duplicates"],
            lost=outcome["lost"],
        )

        rate = args.rate or throughput / 2
        paced_published = paced(client, rate, args.duration)
        latency = collect(target, paced_published, args.timeout)
        result.update(
            offered_rate_per_s=rate,
            latency_p50_ms=1000 * percentile(latency["latencies"], 0.50),
            latency_p95_ms=1000 * percentile(latency["latencies"], 0.95),
            latency_p99_ms=1000 * percentile(latency["latencies"], 0.99),
            duplicates=result["duplicates"] + latency["duplicates"],
            lost=result["lost"] + latency["lost"],
            peak_rss_mb=sorted(probe.peak_rss().values()),
        )
        with postgres_connection(url) as conn:
            result["errors"] = conn.execute("SELECT count(*) FROM failed_emails").fetchone()[0]
        probe.close()
        client.close()
        return result
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)
        if target is not None:
            target.stop()
        postgres.stop()
        redis_server.stop()


def postgres_connection(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def table(result: dict) -> str:
    rss = ", ".join(f"{mb:.0f}" for mb in result["peak_rss_mb"])
    rows = [
        ("target", f"{result['target']}, {result['processes']} worker processes x "
                   f"{result['threads']} threads"),
        ("limit (smtplib, one connection)", f"{result['limit_per_s']:.0f} mails/s"),
        ("throughput", f"{result['throughput_per_s']:.0f} mails/s "
                       f"({result['share_of_limit']:.0%} of the limit), {result['events']} events"),
        ("latency at offered rate", f"{result['offered_rate_per_s']:.0f} events/s: "
                                    f"p50 {result['latency_p50_ms']:.0f} ms, "
                                    f"p95 {result['latency_p95_ms']:.0f} ms, "
                                    f"p99 {result['latency_p99_ms']:.0f} ms"),
        ("worker CPU per mail", f"{result['cpu_ms_per_mail']:.1f} ms"),
        ("server CPU per mail", f"PostgreSQL {result['postgres_cpu_ms_per_mail']:.1f} ms, "
                                f"Redis {result['redis_cpu_ms_per_mail']:.2f} ms, "
                                f"benchmark (the sink) {result['bench_cpu_ms_per_mail']:.1f} ms"),
        ("machine CPU per mail", f"{result['machine_cpu_ms_per_mail']:.1f} ms, "
                                 f"{result['machine_busy_share']:.0%} of {os.cpu_count()} cores "
                                 "busy during the burst"),
        ("peak RSS per worker process", f"{rss} MB"),
        ("PostgreSQL per mail", f"{result['statements_per_mail']:.1f} statements, "
                                f"{result['transactions_per_mail']:.1f} transactions"),
        ("Redis commands per mail", f"{result['redis_commands_per_mail']:.1f}"),
        ("errors / duplicates / lost", f"{result['errors']} / {result['duplicates']} / "
                                       f"{result['lost']}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="Events in the burst.")
    parser.add_argument("--processes", type=int, default=2, help="Worker processes.")
    parser.add_argument("--threads", type=int, default=8, help="Threads per process.")
    parser.add_argument("--rate", type=float, help="Offered events/s; default half the throughput.")
    parser.add_argument("--duration", type=float, default=20, help="Seconds of paced load.")
    parser.add_argument("--target", choices=["sink", "postfix"], default="sink")
    parser.add_argument("--timeout", type=float, default=300, help="Seconds to wait for mail.")
    parser.add_argument("--json", metavar="FILE", help="Also write the figures as JSON.")
    parser.add_argument(
        "--worker-log", type=Path, default=Path("bench-results/worker.log"),
        help="Where the workers' own log goes (warnings and errors).",
    )  # fmt: skip
    args = parser.parse_args()
    args.worker_log.parent.mkdir(parents=True, exist_ok=True)
    result = run(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
