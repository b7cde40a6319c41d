"""The fault-injection suite: ``bash tests/run.sh tests/faults`` (or ``-m faults``).

Every test here starts its own Redis, PostgreSQL, SMTP sink and ``mailroom worker``
groups, so no fixture of ``tests/conftest.py`` is used; the marker is registered
here because ``pyproject.toml`` lists only the project-wide ones.
"""

import signal
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "faults: fault injection against real servers and worker processes (minutes)"
    )
    # The worker groups run in sessions of their own: a SIGTERM (a CI timeout)
    # must unwind through the scenarios' cleanup, which kills them, not skip it.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)
