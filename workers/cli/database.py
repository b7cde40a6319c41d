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

    url = current_settings().sqlalchemy_url
    db.upgrade(url, revision)
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
