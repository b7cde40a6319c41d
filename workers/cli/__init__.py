"""The ``mailroom`` command.

Exit codes: 0 done; 1 the operation failed or found nothing to do (unknown id,
invalid event, nothing to replay); 2 usage error; 3 configuration error (one
line naming the setting); 4 Redis or the database is unreachable; 5 (``status``)
work waits and no worker is alive.
"""

import sys

import click
import redis
import sqlalchemy.exc

from domain.errors import ConfigError
from workers.cli import (  # noqa: F401 (each module adds its commands to the group)
    apikeys,
    bounces,
    database,
    dkim,
    emails,
    failed,
    failed_list,
    failed_replay,
    operations,
    previews,
    publishing,
    retention,
    run,
    schema,
    status,
    suppression,
    webhooks,
)
from workers.cli.base import EXIT_CONFIG, EXIT_FAILED, EXIT_UNREACHABLE, cli


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"mailroom: configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        click.echo(f"mailroom: cannot reach Redis: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError) as exc:
        detail = str(exc.orig)
        if "no such table" in detail or "does not exist" in detail:
            click.echo(
                "mailroom: the database has no mailroom schema yet: run `mailroom db upgrade`",
                err=True,
            )
            sys.exit(EXIT_FAILED)
        click.echo(f"mailroom: cannot use the database: {detail}", err=True)
        sys.exit(EXIT_UNREACHABLE)
