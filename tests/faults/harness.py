"""One fault scenario end to end: servers, supervised worker groups, a steady load,
the fault, the wait for recovery, the tally, the table.

    def test_something():
        run_scenario("name", body)          # body(cluster) injects the fault

``body`` marks each fault with ``cluster.fault(...)``; the harness then keeps the
load up a few seconds more, waits until every published event is mailed or
dead-lettered (or the cap), reads the sink, PostgreSQL and every worker log, prints
the table, appends it to ``test-artifacts/faults.jsonl`` and asserts the targets.
"""

import contextlib
import json
import logging
import shutil
import time
import traceback
from pathlib import Path

import redis
import redis.sentinel

from tests.conftest import base_env
from tests.faults.groups import WorkerGroup
from tests.faults.load import LoadGenerator
from tests.faults.servers import FaultPostgres, FaultRedis, FaultSink, Sentinel, workdir
from tests.faults.tally import Database, Fault, Report, tally
from workers import db
from workers.settings import load_settings

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Seconds of steady load before the first fault.
WARM_S = 10.0
#: Seconds the load goes on after the last fault ended.
TAIL_S = 5.0
#: Seconds after the last fault's end before the scenario stops waiting for mail.
CAP_S = 35.0
RATE = 20.0
#: Events published at once just before a fault.
BACKLOG = 200


class Cluster:
    def __init__(self, name: str, *, sentinel: bool = False) -> None:
        self.name = name
        self.dir = workdir(name)
        self.logdir = ARTIFACTS / "faults" / name
        shutil.rmtree(self.logdir, ignore_errors=True)
        self.logdir.mkdir(parents=True)
        self.faults: list[Fault] = []
        self.groups: list[WorkerGroup] = []
        self.redis = self.replica = self.sentinel = self.postgres = self.sink = None
        self.load: LoadGenerator | None = None
        self.started = time.time()
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's chatter
        try:
            self._start(sentinel)
        except BaseException:
            self.close()  # what did start must not outlive the scenario
            raise

    def _start(self, sentinel: bool) -> None:
        self.redis = FaultRedis(self.dir)
        if sentinel:
            self.replica = FaultRedis(self.dir, replica_of=self.redis.port)
            self.sentinel = Sentinel(self.dir, self.redis)
        # Durable commits: with the suite's usual synchronous_commit=off a postmaster
        # kill -9 loses transactions mailroom was told were committed.
        self.postgres = FaultPostgres("synchronous_commit=on")
        self.database_url = self.postgres.create_database("mailroom_faults")
        db.upgrade(load_settings({"DATABASE_URL": self.database_url}).sqlalchemy_url)
        self.sink = FaultSink()
        self.redis_url = self.sentinel.url if sentinel else self.redis.url
        self.env = base_env(self.redis_url, self.database_url, self.sink.port)
        # Retries back off as shipped (15 s doubling to 300 s), not as the unit
        # tests speed them up: an outage is ridden out the way production would.
        del self.env["MAILROOM_RETRY_MIN_BACKOFF"], self.env["MAILROOM_RETRY_MAX_BACKOFF"]

    # -- workers and load -------------------------------------------------------

    def workers(self, name: str = "worker", **options) -> WorkerGroup:
        group = WorkerGroup(name, self.env, self.logdir, **options)
        self.groups.append(group)
        group.start()
        return group

    def redis_client(self) -> redis.Redis:
        if self.sentinel is not None:
            watcher = redis.sentinel.Sentinel([("127.0.0.1", self.sentinel.port)], socket_timeout=1)
            return watcher.master_for(Sentinel.SERVICE, socket_timeout=2)
        return redis.Redis.from_url(self.redis.url, socket_timeout=2, socket_connect_timeout=1)

    def start_load(self) -> LoadGenerator:
        self.load = LoadGenerator(self.redis_client, RATE)
        self.load.start()
        return self.load

    def backlog(self, count: int = BACKLOG) -> None:
        """A burst on top of the steady load, just before a fault: without it the
        workers keep up with 20 events/s and a fault finds almost nothing in flight."""
        self.load.burst(count)
        time.sleep(0.3)  # read from the stream and partly enqueued/sending, not yet all sent

    def under_load(self) -> tuple[WorkerGroup, float]:
        """Workers, the steady load, a warm-up and a burst: what every fault meets.
        The worker group, and the time when the fault may strike."""
        group = self.workers()
        self.start_load()
        time.sleep(WARM_S)
        self.backlog()
        return group, time.time()

    def fault(self, label: str, start: float, end: float | None = None, deadline_s=30.0) -> Fault:
        fault = Fault(label, start, end if end is not None else time.time(), deadline_s)
        self.faults.append(fault)
        return fault

    # -- the end ----------------------------------------------------------------

    def settle(self, *, cap_s: float = CAP_S) -> None:
        """Keep the load up ``TAIL_S`` more, stop it, wait for every event's outcome
        (a mail, or a dead letter) until ``cap_s`` after the last fault ended."""
        time.sleep(TAIL_S)
        if self.load is not None:
            self.load.stop()
        last_end = max((f.end for f in self.faults), default=time.time())
        deadline = max(last_end + cap_s, time.time() + 10)
        while time.time() < deadline:
            published = self.load.snapshot() if self.load else []
            mailed = {r for m in self.sink.arrivals() for r in m.envelope_to}
            outstanding = {p.address for p in published if p.address not in mailed}
            if outstanding:
                with contextlib.suppress(Exception):
                    outstanding -= {r for _, r, _ in Database.read(self.database_url).dead}
            if not outstanding:
                break
            time.sleep(1.0)
        time.sleep(3.0)  # a late duplicate still gets the chance to show

    def taken_in(self) -> dict[str, float]:
        """Event id -> when mailroom committed it (``events.received_at``)."""
        return Database.read(self.database_url).taken_in

    def logs(self) -> list[Path]:
        return [log for group in self.groups for log in group.logs]

    def report(self, **options) -> Report:
        published = self.load.snapshot() if self.load else []
        poison = len(self.load.poison) if self.load else 0
        restarts = sum(len(g.exits) for g in self.groups)
        return tally(
            self.name, published, self.sink.arrivals(), Database.read(self.database_url),
            self.faults, self.logs(), poison=poison, restarts=restarts, **options,
        )  # fmt: skip

    def close(self) -> None:
        if self.load is not None and self.load.is_alive():
            self.load.stop()
        for group in self.groups:
            group.stop()
        for server in (self.sink, self.sentinel, self.replica, self.redis, self.postgres):
            if server is None:
                continue
            try:  # Redis and Sentinel are killed (close); the others stopped
                server.close() if hasattr(server, "close") else server.stop()
            except Exception:
                traceback.print_exc()
        for server in (self.redis, self.replica):
            if server is not None and server.log.exists():
                shutil.copy(server.log, self.logdir / f"redis-{server.port}.log")
        shutil.rmtree(self.dir, ignore_errors=True)


def run_scenario(name: str, body, *, sentinel: bool = False, settle: dict | None = None,
                 checks=None, **report_options) -> Report:  # fmt: skip
    """Run ``body(cluster)``, settle, tally; print and record the table; assert the
    targets.  ``checks(cluster, report)`` may add scenario-specific violations."""
    cluster = None
    errors: list[str] = []
    report = Report(name)
    started = time.time()
    try:
        cluster = Cluster(name, sentinel=sentinel)
        try:
            body(cluster)
            cluster.settle(**(settle or {}))
        except Exception as exc:
            errors.append(f"scenario aborted: {type(exc).__name__}: {str(exc)[-1500:]}")
            traceback.print_exc()
        try:
            report = cluster.report(**report_options)
            if checks is not None:
                checks(cluster, report)
        except Exception as exc:
            errors.append(f"tally failed: {type(exc).__name__}: {exc}")
            traceback.print_exc()
    finally:
        report.rows["scenario wall time"] = f"{time.time() - started:.0f} s"
        if cluster is not None:
            cluster.close()
    report.violations[:0] = errors
    print("\n" + report.table())
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "faults.jsonl").open("a") as out:
        out.write(json.dumps({"scenario": name, "at": time.time(), "rows": report.rows,
                              "violations": report.violations}) + "\n")  # fmt: skip
    assert not report.violations, report.table()
    return report
