"""`mailroom db ...`: the schema, through Alembic."""

from collections.abc import Iterator
from contextlib import contextmanager

import click

from workers.cli.base import (
    Failure,
    cli,
    current_settings,
)


@cli.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION (default: the latest)."""
    from workers import db

    settings = current_settings()
    if settings.database_url is None:  # the embedded default's SQLite file
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    with _one_line(f"cannot migrate to {revision!r}", settings.sqlalchemy_url):
        db.upgrade(settings.sqlalchemy_url, revision)
    # The revision reached, not the one asked for: Alembic does nothing, and says
    # nothing, when asked to "upgrade" to a revision older than the database's.
    click.echo(f"database at {_current(settings.sqlalchemy_url)}")


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    from alembic import command

    from workers import db

    url = current_settings().sqlalchemy_url
    with _one_line("cannot autogenerate a migration", url):
        command.revision(db.alembic_config(url), message, autogenerate=True)


@contextmanager
def _one_line(doing: str, url: str) -> Iterator[None]:
    """Alembic's refusals (an unknown revision, a database behind) as one line,
    exit 1, with the revisions there are; not its traceback."""
    from alembic.util import CommandError

    try:
        yield
    except CommandError as exc:
        raise Failure(f"{doing}: {exc} ({_revisions(url)})") from None


def _current(url: str) -> str:
    from alembic.runtime.migration import MigrationContext

    from workers import db

    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or "base"
    finally:
        engine.dispose()


def _revisions(url: str) -> str:
    from alembic.script import ScriptDirectory

    from workers import db

    shipped = [
        r.revision for r in ScriptDirectory.from_config(db.alembic_config(url)).walk_revisions()
    ]
    return f"revisions: {', '.join(reversed(shipped))}; `head` is the latest"
