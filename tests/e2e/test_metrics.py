"""The workers' Prometheus endpoint: one scrape of a `mailroom worker` host counts
what every one of its processes did, Dramatiq's own metrics beside ours."""

import json
import os
import signal
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.commands import MAILROOM
from tests.conftest import make_event
from tests.servers import free_port, wait_until


def scrape(port: int) -> dict[tuple, float]:
    """Every sample as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        v for (n, found), v in samples.items() if n == name and set(labels.items()) <= set(found)
    )


@pytest.fixture
def worker_host(env, tmp_path):
    port = free_port()
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [MAILROOM, "worker", "--processes", "2", "--threads", "2"],
        env={"PATH": os.environ["PATH"], **env, "MAILROOM_METRICS_PORT": str(port),
             "MAILROOM_METRICS_HOST": "127.0.0.1", "LOG_FORMAT": "json"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_until(lambda: _answers(port), timeout=30, what="the metrics endpoint")
    yield process, port
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    log.close()
    print((tmp_path / "worker.log").read_text())


def _answers(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False


def test_one_scrape_counts_what_every_worker_process_did(
    worker_host, make_mailroom, smtp_sink, redis_client
):
    process, port = worker_host
    producer = make_mailroom(start_worker=False)  # publishes and reads rows; sends nothing

    events = [make_event(data={"email": f"user{i}@example.com"}) for i in range(6)]
    for event in events:
        producer.publish(event)
    producer.publish(events[0])  # a producer's retry
    producer.publish("{not json")
    producer.wait_for_status("sent", 6, timeout=30)

    smtp_sink.reply = "451 4.3.0 try again later"
    producer.publish(make_event(data={"email": "later@example.com"}))
    wait_until(lambda: value(scrape(port), "mailroom_emails_retried_total") >= 1, timeout=30,
               what="a retry")  # fmt: skip
    smtp_sink.reply = None  # the broker's retry now goes through
    producer.wait_for_status("sent", 7, timeout=30)

    smtp_sink.reply = "550 5.1.1 no such user"
    producer.publish(make_event(data={"email": "nobody@example.com"}))
    producer.wait_for_failed(2, timeout=30)  # the invalid event and the refused mail
    smtp_sink.reply = None

    samples = wait_until(
        lambda: (
            (s := scrape(port))
            and value(s, "mailroom_emails_dead_lettered_total") == 1
            and value(s, "mailroom_events_refused_total") == 1
            and s
        ),
        timeout=10,
        what="the counts",
    )
    notes = {"app": "notes", "kind": "signup"}
    assert value(samples, "mailroom_emails_sent_total", **notes, transport="smtp") == 7
    assert value(samples, "mailroom_events_accepted_total", app="notes") == 8
    assert value(samples, "mailroom_events_duplicate_total") == 1
    assert value(samples, "mailroom_events_refused_total", reason="invalid_event") == 1
    assert value(samples, "mailroom_emails_retried_total", **notes, transport="smtp") == 1
    assert value(samples, "mailroom_emails_dead_lettered_total", **notes, reason="rejected") == 1
    # One send timed per attempt: 7 accepted, 1 deferred, 1 refused.
    assert value(samples, "mailroom_send_duration_seconds_count", outcome="sent") == 7
    assert value(samples, "mailroom_send_duration_seconds_count", outcome="failed") == 1
    assert value(samples, "mailroom_send_duration_seconds_count", outcome="refused") == 1
    assert value(samples, "mailroom_delivery_latency_seconds_count", **notes) == 7
    # The retry went through Dramatiq, whose own metrics are on the same page.
    assert value(samples, "dramatiq_messages_total", actor_name="deliver") >= 1
    # Read from Redis and the database at the scrape.
    assert value(samples, "mailroom_backlog_up") == 1
    assert value(samples, "mailroom_queue_depth", queue="ingress") == 0
    assert value(samples, "mailroom_emails_waiting") == 0
    assert value(samples, "mailroom_oldest_queued_email_age_seconds") == 0
    assert value(samples, "mailroom_dead_letters", reason="rejected") == 1
    assert value(samples, "mailroom_dead_letters", reason="invalid_event") == 1

    # Work waiting shows while nobody takes it (ingress stopped by SIGSTOP).
    children = [int(pid) for pid in _children(process.pid)]
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    try:
        producer.publish(make_event(data={"email": "waiting@example.com"}))
        backlog = scrape(port)
        assert value(backlog, "mailroom_queue_depth", queue="ingress") == 1
    finally:
        for pid in children:
            os.kill(pid, signal.SIGCONT)

    # A worker process killed outright: what it counted still counts.
    os.kill(children[0], signal.SIGKILL)
    producer.wait_for_status("sent", 8, timeout=30)
    after = scrape(port)
    assert value(after, "mailroom_emails_sent_total", **notes) == 8
    assert process.poll() is None


def _children(pid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return found.stdout.split()


def test_dev_serves_the_same_metrics(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [MAILROOM, "dev", "--demo"], cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LOG_FORMAT": "json",
             "MAILROOM_METRICS_PORT": str(port), "MAILROOM_METRICS_HOST": "127.0.0.1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        samples = wait_until(
            lambda: (
                _answers(port)
                and (s := scrape(port))
                and value(s, "mailroom_emails_sent_total", transport="file") >= 6
                and s
            ),
            timeout=60,
            what="the demo's mail counted",
        )
        assert value(samples, "mailroom_events_accepted_total", app="demo") == 5
        assert value(samples, "mailroom_backlog_up") == 1
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["event"] == "metrics.serving" for line in lines)
