"""The ``mailroom`` command group, its exit codes and the helpers commands share.

Exit codes: 0 done; 1 the operation failed or found nothing to do (unknown id,
invalid event, nothing to replay); 2 usage error; 3 configuration error (one
line naming the setting); 4 Redis or the database is unreachable; 5 (``status``)
work waits and no worker is alive.
"""

import json
import signal
import threading
from pathlib import Path

import click

from domain.errors import ConfigError
from workers.settings import load_settings

EXIT_FAILED = 1
EXIT_CONFIG = 3
EXIT_UNREACHABLE = 4
#: Work waits and no worker is alive (``mailroom status``).
EXIT_NO_WORKER = 5
#: Longest summary a command list shows, in characters: in effect no limit, so a
#: summary is wrapped to the terminal, never cut with "..." as Click does.
SUMMARY_LIMIT = 1000


class Failure(click.ClickException):
    """An operation failed: message on stderr, exit code 1."""

    exit_code = EXIT_FAILED


def current_settings():
    """The settings, read when a command runs (never at import)."""
    return load_settings()


def build(settings=None):
    from workers.bootstrap import build_runtime

    return build_runtime(settings or current_settings())


def current_pepper() -> bytes:
    """The current token pepper: it keys the recipient hashes a listing shows."""
    from workers.bootstrap import peppers_for

    settings = current_settings()
    return peppers_for(settings)[settings.token_key_id]


def open_engine():
    from workers.db import make_engine

    settings = current_settings()
    if settings.database_url is None:
        require_embedded_database(settings)
    return make_engine(settings.sqlalchemy_url)


def require_embedded_database(settings) -> None:
    """Refuse, in one line, a state directory without the embedded SQLite file.

    Opening it would create an empty file (or fail with SQLite's "unable to
    open database file" when the directory is missing): the usual cause is a
    command run outside the directory `mailroom dev` runs in, as
    MAILROOM_STATE_DIR is relative to the current one by default.
    """
    from sqlalchemy.engine import make_url

    path = Path(make_url(settings.sqlalchemy_url).database)
    if path.is_file():
        return
    state_dir = settings.state_dir
    if state_dir.is_absolute():
        fix = "start `mailroom dev` or run `mailroom db upgrade` first, or set DATABASE_URL"
    else:
        fix = (
            f"`{state_dir}` is relative to the current directory: run this where "
            "`mailroom dev` runs, or set MAILROOM_STATE_DIR or DATABASE_URL"
        )
    raise ConfigError("MAILROOM_STATE_DIR", f"no mailroom database at {path.absolute()} ({fix})")


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


class Group(click.Group):
    """A command group whose command list shows each summary whole."""

    #: Subgroups (``@cli.group()``) are of this class too.
    group_class = type

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(SUMMARY_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mailroom")
def cli() -> None:
    """mailroom: transactional auth email from events.

    Settings come from the environment (see the README).  With no REDIS_URL,
    commands use the embedded Redis of a running `mailroom dev`.
    """


def page_options(command):
    """``--limit`` and ``--offset``: listings come a page at a time."""
    for option in reversed((
        click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
                     help="At most this many rows; 0 for all."),
        click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Skip this many rows first (the next page)."),
    )):  # fmt: skip
        command = option(command)
    return command


def wait_for_signal(name: str) -> None:
    """Block until SIGINT or SIGTERM (a foreground service's life), then say so."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    click.echo(f"{name}: stopping", err=True)


def address_key_of(ctx, param, value: str | None) -> str | None:
    """Click callback: an address option or argument as the key mail is found by."""
    from domain.addresses import lookup_key

    if value is None:
        return None
    try:
        return lookup_key(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an address: {exc}") from None
