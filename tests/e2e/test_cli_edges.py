"""The `mailroom` command's rough edges, as the operator meets them: one line
that says what is wrong and what to do, and the exit code the README promises."""

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.commands import run
from tests.conftest import make_event
from workers.cli import cli


def lines(text: str) -> list[str]:
    return text.strip().splitlines()


# db upgrade


def test_an_unknown_revision_is_one_line_and_exit_1(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    result = run(env, "db", "upgrade", "nosuchrev")
    assert result.returncode == 1
    [line] = lines(result.stderr)
    assert line.startswith(
        "Error: cannot migrate to 'nosuchrev': Can't locate revision identified by "
        "'nosuchrev' (revisions: 0001, 0002, "
    )
    assert line.endswith("; `head` is the latest)")


def test_db_upgrade_says_the_revision_the_database_is_at(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    assert lines(run(env, "db", "upgrade", "0001").stdout) == ["database at 0001"]
    head = run(env, "db", "upgrade")
    assert head.returncode == 0
    [reached] = lines(head.stdout)
    assert reached.startswith("database at ") and reached != "database at 0001"
    # Asked to "upgrade" to an older revision, Alembic does nothing: say so.
    assert lines(run(env, "db", "upgrade", "0001").stdout) == [reached]


# the state directory


def test_a_command_run_away_from_the_state_directory_says_so(tmp_path):
    for command in (["failed", "list"], ["status"]):
        result = run({}, *command, cwd=tmp_path)
        assert result.returncode == 3, command
        assert lines(result.stderr) == [
            "mailroom: configuration error: MAILROOM_STATE_DIR: no mailroom database at "
            f"{tmp_path / '.mailroom' / 'mailroom.db'} (`.mailroom` is relative to the "
            "current directory: run this where `mailroom dev` runs, or set "
            "MAILROOM_STATE_DIR or DATABASE_URL)"
        ]
    assert list(tmp_path.iterdir()) == []  # nothing was created on the way


def test_an_absolute_state_directory_without_a_database_says_what_to_run(tmp_path):
    state = tmp_path / "state"
    result = run({"MAILROOM_STATE_DIR": str(state)}, "failed", "list", cwd=tmp_path)
    assert result.returncode == 3
    assert lines(result.stderr) == [
        f"mailroom: configuration error: MAILROOM_STATE_DIR: no mailroom database at "
        f"{state / 'mailroom.db'} (start `mailroom dev` or run `mailroom db upgrade` first, "
        "or set DATABASE_URL)"
    ]
    assert run({"MAILROOM_STATE_DIR": str(state)}, "db", "upgrade").returncode == 0
    listed = run({"MAILROOM_STATE_DIR": str(state)}, "failed", "list", "--json", cwd=tmp_path)
    assert (listed.returncode, listed.stdout.strip()) == (0, "[]")


# publish


def test_publish_lists_every_problem_each_naming_its_field(env, redis_client):
    data = json.dumps({"email": "not-an-address", "nmae": "Ada"})
    result = run(env, "publish", "user.signup_requested", "--data", data)
    assert result.returncode == 1
    assert lines(result.stderr) == [
        "mailroom: invalid event: data.email: An email address must have an @-sign.",
        "mailroom: invalid event: data.nmae: Extra inputs are not permitted",
    ]
    assert redis_client.xlen("mailroom:events") == 0

    as_json = run(env, "publish", "user.signup_requested", "--data", data, "--json")
    [reported] = json.loads(as_json.stdout)
    assert reported["problems"] == [
        "data.email: An email address must have an @-sign.",
        "data.nmae: Extra inputs are not permitted",
    ]
    assert reported["error"] == "data.email: An email address must have an @-sign. (and 1 more)"


def test_publish_from_a_file_names_the_line_of_each_problem(env, redis_client, tmp_path):
    good = make_event()
    bad = make_event(data={"email": "ada@example.com", "name": "Ada", "x": 1}, source="Bad App")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    result = run(env, "publish", "--file", str(path))
    assert result.returncode == 1
    assert lines(result.stdout) == [good["id"]]
    assert [line.split(": ")[:3] for line in lines(result.stderr)] == [
        ["mailroom", "invalid event", "line 2"],
        ["mailroom", "invalid event", "line 2"],
    ]
    assert [line.split(": ")[3] for line in lines(result.stderr)] == ["source", "data.x"]


def test_data_that_is_not_json_is_a_usage_error_naming_the_option(env, redis_client):
    result = run(env, "publish", "user.signup_requested", "--data", "notjson")
    assert result.returncode == 2
    assert lines(result.stderr)[-1] == (
        "Error: Invalid value for '--data': not JSON: Expecting value: line 1 column 1 (char 0)"
    )
    assert redis_client.xlen("mailroom:events") == 0


def test_data_with_a_file_is_a_usage_error(env, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(make_event()) + "\n")
    result = run(env, "publish", "--file", str(path), "--data", "{}")
    assert result.returncode == 2
    assert lines(result.stderr)[-1] == (
        "Error: --data goes with TYPE; a --file line is a complete event"
    )


# failed list


@pytest.mark.parametrize("command", ["list", "summary"])
def test_a_bad_since_names_the_option_and_the_forms_it_takes(env, command):
    result = run(env, "failed", command, "--since", "yesterday")
    assert result.returncode == 2
    assert lines(result.stderr)[-1] == (
        "Error: Invalid value for '--since': 'yesterday' is neither an ISO time "
        "(2026-11-22T10:00Z) nor an age (30m, 2h, 7d)"
    )


#: A relay's refusal longer than the ERROR column, over two lines.
LONG_REPLY = (
    "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
    "550 5.1.1 Please try double-checking the recipient's address for typos."
)


def test_a_long_error_is_whole_with_wide_and_in_failed_show(mailroom, smtp_sink, env):
    smtp_sink.reply = LONG_REPLY
    mailroom.publish(make_event())
    mailroom.wait_for_failed(1)
    [listed] = json.loads(run(env, "failed", "list", "--json").stdout)
    error = listed["error"]
    assert "double-checking" in error and len(error) > 100

    cut = run(env, "failed", "list")
    assert cut.returncode == 0
    header, row = lines(cut.stdout)
    shown = row[header.index("ERROR") :]
    assert len(shown) == 60 and shown.endswith("...")
    assert error.startswith(shown[:-3])
    assert lines(cut.stderr) == [
        "rows 1-1 of 1, newest first",
        "errors cut: --wide or `mailroom failed show ID` shows them whole",
    ]

    wide = run(env, "failed", "list", "--wide")
    header, row = lines(wide.stdout)
    assert row[header.index("ERROR") :] == " ".join(error.split())
    assert lines(wide.stderr) == ["rows 1-1 of 1, newest first"]

    shown = run(env, "failed", "show", str(listed["id"]))
    assert f"error:             {error}" in shown.stdout


# send-test


def test_send_test_with_an_unknown_app_and_no_apps_file(env):
    result = run(env, "send-test", "--to", "ada@example.com", "--app", "nope")
    assert result.returncode == 2
    assert lines(result.stderr)[-1] == (
        "Error: Invalid value for '--app': no app 'nope': without MAILROOM_APPS_FILE there "
        "are no named apps, only the default one from the MAILROOM_* settings "
        "(leave out --app)"
    )


def test_send_test_with_an_app_the_apps_file_lacks(env, tmp_path):
    apps_file = tmp_path / "apps.toml"
    apps_file.write_text(
        '[apps.notes]\nfrom = "Notes <no-reply@notes.example.com>"\n'
        '[apps.tasks]\nfrom = "Tasks <no-reply@tasks.example.com>"\n'
    )
    result = run(
        {**env, "MAILROOM_APPS_FILE": str(apps_file)},
        "send-test", "--to", "ada@example.com", "--app", "nope",
    )  # fmt: skip
    assert result.returncode == 2
    assert lines(result.stderr)[-1] == (
        f"Error: Invalid value for '--app': no app 'nope' in {apps_file} (its apps: notes, tasks)"
    )


def health_of(env) -> dict:
    return json.loads(run(env, "status", "--json").stdout)["transports"]["smtp"]


def test_send_test_records_the_transport_health_status_shows(env, smtp_sink):
    assert health_of(env)["state"] == "unknown"

    smtp_sink.stop()
    down = run(env, "send-test", "--to", "ada@example.com")
    assert down.returncode == 1
    failing = run(env, "status", "--json")
    assert failing.returncode == 1  # for monitoring: a transport fails
    smtp = json.loads(failing.stdout)["transports"]["smtp"]
    assert smtp["state"] == "failing"
    assert smtp["error"].startswith(f"SMTP 127.0.0.1:{smtp_sink.port} unreachable: ")
    smtp_sink.start()

    # Refused for this message or recipient: says nothing of the transport's health.
    smtp_sink.reply = "550 5.1.1 mailbox unavailable"
    assert run(env, "send-test", "--to", "ada@example.com").returncode == 1
    assert health_of(env)["state"] == "failing"
    smtp_sink.reply = None

    sent = run(env, "send-test", "--to", "ada@example.com")
    assert sent.returncode == 0, sent.stderr
    assert len(smtp_sink.messages) == 1
    healthy = run(env, "status", "--json")
    assert healthy.returncode == 0
    smtp = json.loads(healthy.stdout)["transports"]["smtp"]
    assert (smtp["state"], smtp["error"]) == ("ok", None)

    wrong = run({**env, "MAILROOM_SMTP_SECURITY": "starttls"}, "send-test", "--to", "a@b.org")
    assert wrong.returncode == 1
    smtp = health_of(env)
    assert (smtp["state"], smtp["setting"]) == ("misconfigured", "MAILROOM_SMTP_SECURITY")


def test_send_test_without_redis_still_sends_and_says_health_is_unrecorded(env, smtp_sink):
    result = run({**env, "REDIS_URL": "redis://127.0.0.1:1/0"}, "send-test", "--to", "a@b.org")
    assert result.returncode == 0
    assert lines(result.stdout)[0].startswith("smtp: accepted (")
    [line] = lines(result.stderr)
    assert line.startswith("mailroom: transport health not recorded: cannot reach Redis: ")
    assert len(smtp_sink.messages) == 1


# help


def groups(group: click.Group, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from groups(command, (*path, name))


@pytest.mark.parametrize("width", [80, 50])
def test_every_command_summary_is_whole_in_its_group_help(width):
    checked = 0
    for path, group in groups(cli):
        shown = CliRunner().invoke(cli, [*path, "--help"], terminal_width=width)
        assert shown.exit_code == 0, shown.output
        listing = " ".join(shown.output.partition("\nCommands:\n")[2].split())
        for name, command in group.commands.items():
            whole = " ".join(command.get_short_help_str(limit=10_000).split())
            assert f"{name} {whole}" in listing, f"mailroom {' '.join(path)}: {name} is cut"
            checked += 1
    assert checked > 20


def test_top_level_help_cuts_no_summary():
    result = run({}, "--help", cwd=Path(__file__).parent)
    assert result.returncode == 0
    listing = result.stdout.partition("\nCommands:\n")[2]
    whole = " ".join(listing.split())
    assert "failed List, summarize, inspect, replay and discard dead-lettered mail." in whole
    assert not any(line.endswith("...") for line in listing.splitlines())
