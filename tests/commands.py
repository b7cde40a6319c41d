"""Running the ``mailroom`` command as a user would: a subprocess with its own environment."""

import os
import subprocess
import sys
from pathlib import Path

MAILROOM = str(Path(sys.executable).parent / "mailroom")


def run(env: dict, *args: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MAILROOM, *args],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
