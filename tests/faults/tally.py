"""What a scenario did, as a user would see it: mails at the SMTP server, rows in
PostgreSQL, lines in the workers' logs; and which targets it missed."""

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.faults.load import Published
from tests.mail import code_in, token_in

#: A duplicate later than this after its original misses the target.
DUPLICATE_WINDOW_S = 30.0
#: Duplicates allowed, as a share of the events published.
DUPLICATE_SHARE = 0.005
#: A mail whose first copy reached the server this shortly before a fault began
#: (or while it lasted) was in flight when it struck: its sender could not have
#: recorded it, so its resend is the duplicate at-least-once delivery allows.
#: The scenarios' SMTP timeout: a mail whose data arrived this long before may
#: still have been waiting for its reply.
IN_FLIGHT_S = 5.0
#: Seconds after a kill during which the sink may still be reading what the dead
#: sender had already written to its socket (the kernel delivers it; a loaded
#: sink reads it late).  Well short of a lease: a resend comes 15 s later.
SINK_LAG_S = 5.0

#: Anything shaped like an address (the workers' own masking regex, roughly).
ADDRESS = re.compile(r"[^\s@'\"<>(),;:\[\]\\/=]+@[^\s@'\"<>(),;:\[\]\\/]+\.[A-Za-z]{2,}")
MASKED = re.compile(r"^[^*]?\*\*\*$")
NUMBER = re.compile(r"\b\d{6,8}\b")
WORDISH = re.compile(r"[A-Za-z0-9_-]{16,}")


@dataclass
class Fault:
    label: str
    start: float
    #: When the system is whole again: the restart, the server back, or the kill
    #: itself when the other processes keep running.
    end: float
    #: Every event published before ``end`` and not mailed by ``start`` must be
    #: mailed within this many seconds of ``end`` (None: no deadline).
    deadline_s: float | None = 30.0


@dataclass
class Database:
    taken_in: dict[str, float]  # event id -> received_at (epoch)
    dead: list[tuple[str, str | None, str | None]]  # reason, recipient, event id
    emails: dict[str, int]  # status -> count
    sending: set[str] = field(default_factory=set)  # recipients of rows still claimed

    @classmethod
    def read(cls, url: str) -> "Database":
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            events = conn.execute("SELECT id::text, received_at FROM events").fetchall()
            dead = conn.execute(
                "SELECT reason, lower(recipient), event_id::text FROM failed_emails"
            ).fetchall()
            emails = conn.execute("SELECT status, count(*) FROM emails GROUP BY status").fetchall()
            sending = conn.execute(
                "SELECT lower(recipient) FROM emails WHERE status = 'sending'"
            ).fetchall()
        return cls(
            {i: r.timestamp() for i, r in events}, dead, dict(emails), {r for (r,) in sending}
        )


def leaks(logs: list[Path], codes: set[str], tokens: set[str]) -> dict:
    """Lines of any worker log holding an unmasked address, a mailed code or token."""
    found: dict[str, list[str]] = {"addresses": [], "codes": [], "tokens": []}
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            text = line
            try:  # a timestamp's microseconds are six digits too
                record = json.loads(line)
                if isinstance(record, dict):
                    record.pop("timestamp", None)
                    # <email-id.mailroom@sender-domain>: names no person.
                    record.pop("message_id", None)
                    text = json.dumps(record)
            except ValueError:
                pass
            where = f"{path.name}: {line[:300]}"
            if any(not MASKED.match(m.group().split("@")[0]) for m in ADDRESS.finditer(text)):
                found["addresses"].append(where)
            if codes.intersection(NUMBER.findall(text)):
                found["codes"].append(where)
            if tokens.intersection(WORDISH.findall(line)):
                found["tokens"].append(where)
    return found


@dataclass
class Report:
    scenario: str
    rows: dict = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def table(self) -> str:
        width = max(len(k) for k in self.rows) if self.rows else 0
        lines = [f"== fault scenario: {self.scenario} =="]
        lines += [f"{k:<{width}}  {v}" for k, v in self.rows.items()]
        verdict = "PASS" if not self.violations else "FAIL"
        lines.append(f"{'result':<{width}}  {verdict}")
        lines += [f"  - {v}" for v in self.violations]
        return "\n".join(lines)


def tally(  # noqa: C901 - one place computing every figure of the table
    scenario: str,
    published: list[Published],
    messages: list,
    db: Database,
    faults: list[Fault],
    logs: list[Path],
    *,
    lost_scope: str = "published",
    expected_rejected: set[str] = frozenset(),
    poison: int = 0,
    restarts: int = 0,
    extra: dict | None = None,
) -> Report:
    report = Report(scenario)
    v = report.violations
    arrivals: dict[str, list[float]] = {}
    codes, tokens = set(), set()
    for message in messages:
        for rcpt in message.envelope_to:
            arrivals.setdefault(rcpt, []).append(message.arrived)
        try:
            codes.add(code_in(message))
            tokens.add(token_in(message))
        except (AttributeError, KeyError, LookupError):
            pass
    dead_by_address: dict[str, str] = {r: reason for reason, r, _ in db.dead if r}
    by_address = {p.address: p for p in published}
    first = {a: min(t) for a, t in arrivals.items()}

    delivered = [p for p in published if p.address in first]
    dead_lettered = [
        p for p in published if p.address not in first and p.address in dead_by_address
    ]
    lost = [p for p in published if p.address not in first and p.address not in dead_by_address]
    lost_taken_in = [p for p in lost if p.id in db.taken_in]
    duplicates = sum(len(t) - 1 for a, t in arrivals.items() if a in by_address)
    late_dups = [
        a for a, t in arrivals.items() if len(t) > 1 and max(t) - min(t) > DUPLICATE_WINDOW_S
    ]
    max_dup_gap = max((max(t) - min(t) for t in arrivals.values() if len(t) > 1), default=0.0)
    in_flight = [
        a
        for a, t in arrivals.items()
        if len(t) > 1 and any(f.start - IN_FLIGHT_S <= min(t) <= f.end + SINK_LAG_S for f in faults)
    ]
    unexplained = duplicates - sum(len(arrivals[a]) - 1 for a in in_flight)
    stray = [a for a in arrivals if a not in by_address]
    latencies = sorted(first[p.address] - p.at for p in delivered)
    dead_reasons = Counter(reason for reason, _, _ in db.dead)

    def pct(share):
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] if latencies else 0

    rows = report.rows
    rows["events published"] = f"{len(published)} (+{poison} poison entries)"
    rows["taken in (rows in events)"] = str(sum(1 for p in published if p.id in db.taken_in))
    rows["mails delivered"] = f"{len(delivered)} events, {sum(map(len, arrivals.values()))} mails"
    rows["lost"] = f"{len(lost)} ({len(lost_taken_in)} of them taken in by mailroom)"
    rows["duplicated"] = (
        f"{duplicates} ({duplicates / max(len(published), 1):.2%}; {len(in_flight)} in flight "
        f"when a fault struck), latest {max_dup_gap:.1f} s after its original"
    )
    rows["dead-lettered by reason"] = (
        ", ".join(f"{r}: {n}" for r, n in sorted(dead_reasons.items())) or "none"
    )
    rows["emails rows by status"] = ", ".join(f"{s}: {n}" for s, n in sorted(db.emails.items()))
    rows["mailed, row still 'sending'"] = (
        f"{len(db.sending & set(first))} (sent again once the claim lapses?), "
        f"{len(db.sending - set(first))} not mailed"
    )
    rows["publish -> mail"] = f"p50 {pct(0.5):.2f} s, p99 {pct(0.99):.2f} s, max {pct(1):.2f} s"
    rows["worker master exits"] = str(restarts)

    # Per fault: the events it touched (published before it ended, not mailed
    # before it began), each counted under the first fault that touched it.
    seen: set[str] = set()
    for fault in faults:
        touched = [
            p for p in published
            if p.at < fault.end and p.address not in seen
            and (p.address not in first or first[p.address] >= fault.start)
            and p.address not in expected_rejected
        ]  # fmt: skip
        seen.update(p.address for p in touched)
        if lost_scope == "taken_in":
            touched = [p for p in touched if p.id in db.taken_in]
        missing = [p for p in touched if p.address not in first]
        last = max((first[p.address] for p in touched if p.address in first), default=None)
        if missing:
            recovery = f"never: {len(missing)} of {len(touched)} affected not mailed"
        elif last is None:
            recovery = "no mail affected"
        else:
            recovery = f"{last - fault.start:.1f} s ({len(touched)} affected)"
        rows[f"fault -> last affected mail [{fault.label}]"] = recovery
        if fault.deadline_s is not None:
            late = [
                p
                for p in touched
                if first.get(p.address, float("inf")) > fault.end + fault.deadline_s
            ]
            if late:
                v.append(
                    f"{fault.label}: {len(late)} of {len(touched)} affected events not mailed "
                    f"within {fault.deadline_s:.0f} s of the fault's end (restart or recovery)"
                )

    leaked = leaks(logs, codes, tokens)
    rows["log leaks (lines)"] = (
        f"unmasked addresses {len(leaked['addresses'])}, codes {len(leaked['codes'])}, "
        f"tokens/links {len(leaked['tokens'])} ({len(logs)} logs, {len(codes)} codes, "
        f"{len(tokens)} tokens checked)"
    )
    for kind, lines in leaked.items():
        if lines:
            v.append(f"log lines with {kind}: {len(lines)}, e.g. {lines[0]}")
    for key, value in (extra or {}).items():
        rows[key] = value

    if lost_scope == "taken_in":
        if lost_taken_in:
            v.append(f"lost {len(lost_taken_in)} events mailroom had taken in")
    elif lost:
        v.append(f"lost {len(lost)} events (never mailed, not dead-lettered)")
    # A duplicate is explained when its original was in flight as a fault struck:
    # at least once allows it, and the scenario chooses how many mails are in
    # flight.  Any other duplicate fails; so does a share above the target that
    # is not all explained.
    if unexplained:
        v.append(f"{unexplained} duplicates not in flight when a fault struck")
        if duplicates > DUPLICATE_SHARE * len(published):
            v.append(f"{duplicates} duplicates > {DUPLICATE_SHARE:.1%} of {len(published)} events")
    if late_dups:
        v.append(f"{len(late_dups)} duplicates > {DUPLICATE_WINDOW_S:.0f} s after their original")
    if stray:
        v.append(f"{len(stray)} mails for recipients never published, e.g. {stray[0]}")
    rejected = {a for reason, a, _ in db.dead if reason == "rejected"}
    expected = expected_rejected & set(by_address)
    if rejected != expected:
        v.append(
            f"dead-lettered as rejected: {len(rejected)}, expected exactly the "
            f"{len(expected)} refused recipients ({len(rejected ^ expected)} differ)"
        )
    if dead_reasons.get("invalid_event", 0) != poison:
        invalid = dead_reasons.get("invalid_event", 0)
        v.append(f"invalid_event dead letters: {invalid}, poison entries: {poison}")
    others = {r: n for r, n in dead_reasons.items() if r not in ("rejected", "invalid_event")}
    if others:
        v.append(f"dead-lettered unexpectedly: {others}")
    if dead_lettered and not expected_rejected:
        v.append(f"{len(dead_lettered)} published events dead-lettered instead of mailed")
    return report
