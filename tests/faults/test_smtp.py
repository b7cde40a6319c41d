"""The SMTP server goes down for 30 s; refuses some recipients with 550 (with
poison entries in the same stream)."""

import time

from tests.faults.harness import WARM_S, run_scenario
from tests.faults.load import address

#: Seconds the SMTP server is down (a sign-up code lives 5 minutes).
OUTAGE_S = 30.0
#: Every REFUSE_EVERY-th recipient is answered 550.
REFUSE_EVERY = 20
#: Raw stream entries that are not events, XADDed between the sign-ups.
POISON = (
    {"event": "not json at all"},
    {"event": '{"version": 1, "type": "user.signup_requested"}'},
    {"event": b"\xff\xfe\x00 not utf-8"},
    {"other": "an entry without the event field"},
    {"event": '{"version":1,"id":"not-a-uuid","type":"no.such_type","source":"notes",'
              '"occurred_at":"2024-01-01T00:00:00Z","data":{}}'},
    {"event": "[" * 10_000},
)  # fmt: skip


def test_smtp_down_30_s():
    intake = {}

    def body(c):
        c.workers()
        c.start_load()
        time.sleep(WARM_S)
        at = time.time()
        c.sink.stop()
        time.sleep(OUTAGE_S)
        c.sink.start()
        # No 30-s deadline: mail delivers once retries find the server again.
        c.fault(f"SMTP server down {OUTAGE_S:.0f} s", at, time.time(), deadline_s=None)
        intake["window"] = (at, time.time())

    def checks(c, report):
        start, end = intake.get("window", (0, 0))
        taken = c.taken_in()
        during = [p for p in c.load.snapshot() if start <= p.at <= end - 5]
        slow = [p for p in during if taken.get(p.id, float("inf")) - p.at > 5]
        worst = max((taken.get(p.id, float("inf")) - p.at for p in during), default=0)
        report.rows["intake during the outage"] = (
            f"{len(during) - len(slow)} of {len(during)} events in `events` within 5 s "
            f"(worst {worst:.1f} s)"
        )
        if not during or slow:
            report.violations.append(
                f"intake stalled during the SMTP outage: {len(slow)} of {len(during)} events "
                "published during it did not reach `events` within 5 s"
            )

    run_scenario("smtp_down_30s", body, checks=checks, settle={"cap_s": 60.0})


def test_smtp_550_for_some_recipients_with_poison_in_the_stream():
    refused = {address(n) for n in range(REFUSE_EVERY - 1, 10_000, REFUSE_EVERY)}

    def body(c):
        c.sink.refuse = refused
        c.workers()
        load = c.start_load()
        time.sleep(WARM_S / 2)
        load.inject(*POISON)
        time.sleep(WARM_S)

    def checks(c, report):
        if any(g.exits for g in c.groups):
            report.violations.append("a worker master exited while serving poison")

    run_scenario("smtp_550_and_poison", body, checks=checks, expected_rejected=refused)
