"""The ``mailroom`` command group, its exit codes and the helpers commands share.

Exit codes: 0 done; 1 the operation failed or found nothing to do (unknown id,
invalid event, nothing to replay); 2 usage error; 3 configuration error (one
line naming the setting); 4 Redis or the database is unreachable; 5 (``status``)
work waits and no worker is alive.
"""

import json

import click

from workers.settings import load_settings

EXIT_FAILED = 1
EXIT_CONFIG = 3
EXIT_UNREACHABLE = 4
#: Work waits and no worker is alive (``mailroom status``).
EXIT_NO_WORKER = 5


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

    return make_engine(current_settings().sqlalchemy_url)


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mailroom")
def cli() -> None:
    """mailroom: transactional auth email from events.

    Settings come from the environment (see the README).  With no REDIS_URL,
    commands use the embedded Redis of a running `mailroom dev`.
    """
