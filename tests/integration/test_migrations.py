"""The migrations build exactly the schema the models describe, on both databases,
and go down and up again."""

import warnings

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from workers import db
from workers.settings import load_settings
from workers.store.tables import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, postgres_server):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = postgres_server.create_database("mailroom_migrations")
    return load_settings({"DATABASE_URL": url}).sqlalchemy_url


def test_migrations_match_the_models_and_reverse(database_url):
    db.upgrade(database_url)
    engine = create_engine(database_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # expression indexes are not reflected
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    command.downgrade(db.alembic_config(database_url), "base")
    assert inspect(engine).get_table_names() == ["alembic_version"]
    db.upgrade(database_url)
    assert {"events", "challenges", "emails", "failed_emails", "address_guards", "api_keys"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
