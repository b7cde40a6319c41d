"""`mailroom db ...`: the schema, through Alembic."""

import click

from workers.cli.base import (
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
    db.upgrade(settings.sqlalchemy_url, revision)
    click.echo(f"database at {revision}")


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    from alembic import command

    from workers import db

    command.revision(
        db.alembic_config(current_settings().sqlalchemy_url), message, autogenerate=True
    )
