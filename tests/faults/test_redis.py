"""Redis goes away: a clean restart, kill -9 (back with its AOF), back empty, and a
Sentinel failover from a primary to its replica."""

import time

from tests.faults.harness import run_scenario

#: How long Redis stays down in the restart scenarios, seconds.
DOWN_S = 2.0


def _restart(c, how: str) -> None:
    _, at = c.under_load()
    if how == "restart":
        c.redis.stop()
    else:
        c.redis.kill()
    if how == "empty":
        c.redis.wipe()
    time.sleep(DOWN_S)
    c.redis.start()
    c.fault(f"redis {how}", at, time.time())


def test_redis_restart_with_aof():
    run_scenario("redis_restart", lambda c: _restart(c, "restart"))


def test_redis_kill_9_restarted_with_its_aof():
    # appendfsync everysec may lose the last second of XADDs: Redis's own loss,
    # so only what mailroom had taken in must be mailed.
    run_scenario("redis_kill9", lambda c: _restart(c, "kill -9"), lost_scope="taken_in")


def test_redis_back_empty():
    run_scenario("redis_back_empty", lambda c: _restart(c, "empty"), lost_scope="taken_in")


def test_redis_sentinel_failover():
    switched = {}

    def body(c):
        _, at = c.under_load()
        c.redis.kill()  # the primary; the sentinel promotes the replica
        deadline = time.time() + 30
        while c.sentinel.primary_port() != c.replica.port:
            if time.time() > deadline:
                raise AssertionError("the sentinel did not fail over")
            time.sleep(0.1)
        switched["failover"] = time.time() - at
        c.fault("primary kill -9, replica promoted", at, time.time())

    def checks(c, report):
        report.rows["sentinel failover took"] = f"{switched.get('failover', float('nan')):.1f} s"
        if c.faults and c.load is not None:
            taken = c.taken_in()
            before = [p for p in c.load.snapshot() if p.at < c.faults[0].start]
            report.rows["acked by the old primary, never taken in"] = str(
                len([p for p in before if p.id not in taken])
            )

    run_scenario("redis_sentinel_failover", body, sentinel=True, checks=checks,
                 lost_scope="taken_in")  # fmt: skip
