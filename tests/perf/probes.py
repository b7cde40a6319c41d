"""What one benchmark phase cost: worker CPU and memory from /proc, statements and
transactions from PostgreSQL, commands from Redis, and how busy the whole machine
was (/proc/stat), which tells whether the run was bound by its CPUs."""

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

#: Clock ticks per second, for /proc's CPU times.
TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant, from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split()
            todo.extend(int(child) for child in children)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU the processes have spent (their reaped children included)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat; 12-15 after the name.
        total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent on anything but idling."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: steal is what the host gave
    # to other machines, and guest time is within user.
    return (sum(fields[:7]) - fields[3] - fields[4]) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Counters:
    cpu: float
    statements: int
    transactions: int
    redis_commands: int
    #: CPU seconds of the PostgreSQL server (all its processes) and of Redis.
    postgres_cpu: float = 0.0
    redis_cpu: float = 0.0
    #: CPU seconds of this process (the sink's SMTP server runs in it) and of
    #: the whole machine.
    own_cpu: float = 0.0
    machine_cpu: float = 0.0

    def __sub__(self, other: "Counters") -> "Counters":
        return Counters(
            self.cpu - other.cpu,
            self.statements - other.statements,
            self.transactions - other.transactions,
            self.redis_commands - other.redis_commands,
            self.postgres_cpu - other.postgres_cpu,
            self.redis_cpu - other.redis_cpu,
            self.own_cpu - other.own_cpu,
            self.machine_cpu - other.machine_cpu,
        )


class Probe:
    """Reads the counters of one mailroom deployment."""

    def __init__(
        self, database_url: str, redis_url: str, worker_pid: int, postgres_pid: int, redis_pid: int
    ) -> None:
        self.postgres_pid = postgres_pid
        self.redis_pid = redis_pid
        self.database_url = database_url
        self.redis = redis.Redis.from_url(redis_url)
        self.worker_pid = worker_pid
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def read(self) -> Counters:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            # The probe's own queries are in pg_stat_statements too: a constant few.
            statements = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"
            ).fetchone()[0]
            transactions = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            ).fetchone()[0]
        commands = sum(stats["calls"] for stats in self.redis.info("commandstats").values())
        return Counters(
            cpu_seconds(process_tree(self.worker_pid)),
            int(statements),
            int(transactions),
            commands,
            # The backends are the postmaster's children; those that exited, in its cutime.
            cpu_seconds(process_tree(self.postgres_pid)),
            cpu_seconds([self.redis_pid]),
            cpu_seconds([os.getpid()]),
            machine_busy_seconds(),
        )

    def peak_rss(self) -> dict[int, float]:
        """Peak resident memory of each worker process (the master's children), MB."""
        children = [pid for pid in process_tree(self.worker_pid) if pid != self.worker_pid]
        return {pid: peak_rss_mb(pid) for pid in children}

    def close(self) -> None:
        self.redis.close()
