"""PostgreSQL goes away: a fast restart, and the postmaster killed with -9 (started
again two seconds later, as a supervisor would)."""

import time

from tests.faults.harness import WARM_S, run_scenario


def test_postgres_fast_restart():
    def body(c):
        c.workers()
        c.start_load()
        time.sleep(WARM_S)
        c.backlog()
        at = time.time()
        c.postgres.restart_fast()
        c.fault("pg_ctl restart -m fast", at, time.time())

    run_scenario("postgres_restart_fast", body)


def test_postgres_postmaster_kill_9():
    def body(c):
        c.workers()
        c.start_load()
        time.sleep(WARM_S)
        c.backlog()
        at = time.time()
        options = c.postgres.kill_postmaster()
        time.sleep(2.0)
        c.postgres.start_again(options)
        c.fault("postmaster kill -9, started again after 2 s", at, time.time())

    run_scenario("postgres_postmaster_kill9", body)
