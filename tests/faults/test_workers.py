"""Worker processes die: one child, the whole worker (twice: once with mails in DATA
at the server), and one of two worker hosts."""

import time

from tests.faults.harness import WARM_S, run_scenario

#: Seconds between the three kills of one worker process.
CHILD_KILL_EVERY_S = 20.0


def test_kill_one_worker_process_three_times():
    def body(c):
        group = c.workers()
        c.start_load()
        time.sleep(WARM_S)
        for round_ in range(3):
            if round_:
                time.sleep(CHILD_KILL_EVERY_S)
            c.backlog()
            at = time.time()
            pid = group.kill_child()
            # The other processes keep running: the deadline counts from the kill.
            c.fault(f"kill -9 worker process {pid}", at, at)

    run_scenario("worker_child_kill_x3", body)


def test_kill_whole_worker_restarted_at_once():
    def body(c):
        group, _ = c.under_load()
        at = group.kill_all()  # the supervisor starts it again at once
        _wait_restart(group, at)
        c.fault("kill -9 master and children", at, group.last_restart())

    run_scenario("worker_whole_kill", body)


def test_kill_whole_worker_while_mails_are_in_data():
    stalled = {}

    def body(c):
        group = c.workers()
        c.start_load()
        time.sleep(WARM_S)
        # Every DATA from now on waits 3 s before its 250 (the SMTP timeout is 5 s).
        c.sink.stall_s, c.sink.stall_until = 3.0, time.time() + 2.5
        time.sleep(2.4)
        stalled["in DATA at the kill"] = c.sink.in_data
        at = group.kill_all()
        c.sink.stall_until = 0.0
        _wait_restart(group, at)
        c.fault("kill -9 whole worker, mails in DATA", at, group.last_restart())

    def checks(c, report):
        report.rows["mails in DATA at the kill"] = str(stalled.get("in DATA at the kill"))
        if not stalled.get("in DATA at the kill"):
            report.violations.append("harness: no mail was in DATA at the kill")

    run_scenario("worker_whole_kill_mid_data", body, checks=checks)


def test_sigterm_to_the_whole_group_stops_gracefully_and_loses_nothing():
    stopped = {}

    def body(c):
        group, _ = c.under_load()
        at, exited, code = group.terminate_all()  # the supervisor starts it again at once
        stopped["took"], stopped["exit code"] = exited - at, code
        _wait_restart(group, at)
        c.fault("SIGTERM to the process group", at, group.last_restart())

    def checks(c, report):
        report.rows["SIGTERM -> master exited"] = f"{stopped.get('took', 0):.1f} s"
        report.rows["master exit code"] = str(stopped.get("exit code"))
        if stopped.get("exit code") != 0:
            report.violations.append(f"the master exited with {stopped.get('exit code')}")
        if stopped.get("took", 99) > 60:
            report.violations.append("the workers took longer than 60 s to stop")
        if not report.rows["duplicated"].startswith("0 "):
            report.violations.append("a graceful stop sent a mail twice")

    run_scenario("worker_group_sigterm", body, checks=checks)


def test_two_worker_hosts_one_killed():
    def body(c):
        c.workers("host-a", hostname="fault-host-a")
        host_b = c.workers("host-b", hostname="fault-host-b", supervised=False)
        c.start_load()
        time.sleep(WARM_S)
        c.backlog()
        at = host_b.kill_all()  # the host is gone: nothing restarts it
        c.fault("host-b: kill -9 master and children, not restarted", at, at)

    run_scenario("two_hosts_one_killed", body)


def _wait_restart(group, killed_at: float) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        restarted = group.last_restart()
        if restarted and restarted >= killed_at:
            return
        time.sleep(0.05)
    raise AssertionError("the supervisor did not restart the worker")
