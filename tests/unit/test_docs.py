"""The README is the front door: it must stay true."""

import re
from pathlib import Path

import click

from workers.cli import cli
from workers.settings import SETTINGS_DOC

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_settings_table():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert documented == set(SETTINGS_DOC)


def test_every_command_is_in_the_cli_reference():
    def paths(group, prefix):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from paths(command, f"{prefix} {name}")
            else:
                yield f"{prefix} {name}"

    for path in paths(cli, "mailroom"):
        assert f"`{path}" in README, f"{path} is not documented"


def test_the_two_commands_and_ci_agree():
    assert "bash tests/run.sh" in README
    assert "mailroom dev --demo" in README
    assert "bash tests/run.sh" in (ROOT / ".ci" / "run").read_text()
    procfile = (ROOT / "Procfile").read_text()
    assert "release: mailroom db upgrade" in procfile and "worker: mailroom worker" in procfile
