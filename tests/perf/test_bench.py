"""The benchmark, CI-sized: it runs end to end and what it counts holds.

Nothing here is timed; the counts are per mail and do not depend on how fast or
busy the machine is.
"""

import json
import subprocess
import sys

from tests.imports import ROOT


def test_a_small_benchmark_delivers_every_event_once_at_its_statement_budget(tmp_path):
    out = tmp_path / "bench.json"
    ran = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench", "--events", "300", "--duration", "3",
         "--json", str(out), "--worker-log", str(tmp_path / "worker.log")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (result["errors"], result["duplicates"], result["lost"]) == (0, 0, 0)
    # Six statements a mail (see the README's capacity model); the sweeper's
    # and the keeper's occasional ones, and the probe's own, stay under one more.
    assert 5.5 <= result["statements_per_mail"] < 7
    assert result["throughput_per_s"] > 0 and result["latency_p99_ms"] > 0
    assert 0 < result["machine_busy_share"] <= 1.05
    assert "worker CPU per mail" in ran.stdout and "machine CPU per mail" in ran.stdout
