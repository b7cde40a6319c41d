"""Node.js in the tests: examples/node as a user has it after `npm ci` (node-redis 6
among its packages), and node run beside it."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
#: Longest an `npm ci` may take, in seconds (a cold cache downloads ~50 MB).
NPM_TIMEOUT = 300
#: Longest a run of node may take, in seconds.
RUN_TIMEOUT = 60


def node_env(**extra) -> dict:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **extra}


def install_example(top: Path) -> Path:
    """examples/node installed in a copy under ``top``, beside a copy of schema/, so
    that the checkout gets no node_modules from a test run."""
    # Node is part of the test machine's image: a missing one is a broken machine,
    # not a reason to skip the only checks that Node producers and consumers work.
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH: examples/node needs Node.js 20 or later and npm")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    if int(version.stdout.strip().lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"node {version.stdout.strip()}: examples/node (redis 6) needs Node.js 20+")
    shutil.copytree(ROOT / "schema", top / "schema")
    example = top / "examples" / "node"
    shutil.copytree(
        ROOT / "examples" / "node", example, ignore=shutil.ignore_patterns("node_modules")
    )
    installed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=example,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
    )
    assert installed.returncode == 0, installed.stderr
    return example


def node(example: Path, *args: str, stdin: str | None = None, **env) -> subprocess.CompletedProcess:
    """``node ARGS`` in ``example``, whose packages its imports resolve to."""
    return subprocess.run(
        ["node", *args],
        cwd=example,
        env=node_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
