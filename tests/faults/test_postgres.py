"""PostgreSQL goes away: a fast restart, and the postmaster killed with -9 (started
again two seconds later, as a supervisor would)."""

import time

from tests.faults.harness import run_scenario


def test_postgres_fast_restart():
    def body(c):
        _, at = c.under_load()
        c.postgres.restart_fast()
        c.fault("pg_ctl restart -m fast", at, time.time())

    run_scenario("postgres_restart_fast", body)


def test_postgres_postmaster_kill_9():
    def body(c):
        _, at = c.under_load()
        options = c.postgres.kill_postmaster()
        time.sleep(2.0)
        c.postgres.start_again(options)
        c.fault("postmaster kill -9, started again after 2 s", at, time.time())

    run_scenario("postgres_postmaster_kill9", body)
