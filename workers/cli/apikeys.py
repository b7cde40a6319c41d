"""`mailroom apikey ...`: the verification API keys stored in the database."""

from datetime import UTC, datetime

import click

from domain.apps import APP_ID_RULE, is_app_id
from workers.cli.base import (
    Failure,
    cli,
    echo_json,
    open_engine,
    table,
)


@cli.group()
def apikey() -> None:
    """API keys of the apps that call the verification API."""


@apikey.command("create")
@click.argument("app")
@click.option(
    "--no-store",
    is_flag=True,
    help="Do not store it: print the key and the api_key_sha256 line for the apps file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def apikey_create(app: str, no_store: bool, as_json: bool) -> None:
    """Create a key for APP (its events' `source`); the key is shown only now."""
    from domain.tokens import api_key_digest, new_api_key
    from workers.store import apikeys

    if not is_app_id(app):
        raise click.BadParameter(APP_ID_RULE, param_hint="APP")
    if no_store:
        key = new_api_key()
        digest = api_key_digest(key)
        if as_json:
            echo_json({"app": app, "key": key, "api_key_sha256": digest})
        else:
            click.echo(key)
            click.echo(f'in [apps.{app}] of the apps file: api_key_sha256 = ["{digest}"]', err=True)
        return
    with open_engine().begin() as conn:
        row, key = apikeys.create(conn, app, datetime.now(UTC))
    if as_json:
        echo_json({"id": row.id, "app": app, "key": key})
    else:
        click.echo(key)
        click.echo(f"key {row.id} for {app}: store it now, it cannot be shown again", err=True)


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def apikey_list(as_json: bool) -> None:
    """List keys (their first characters only)."""
    from workers.store import apikeys

    with open_engine().connect() as conn:
        rows = apikeys.list_keys(conn)
    records = [
        {
            "id": r.id,
            "app": r.app,
            "prefix": r.prefix,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]
    if as_json:
        echo_json(records)
    elif not records:
        click.echo("no API keys", err=True)
    else:
        table(
            ["ID", "APP", "KEY", "CREATED", "REVOKED"],
            [
                [str(r["id"]), r["app"], r["prefix"] + "...", r["created_at"][:19],
                 (r["revoked_at"] or "-")[:19]]
                for r in records
            ],
        )  # fmt: skip


@apikey.command("revoke")
@click.argument("key_id", metavar="ID", type=int)
def apikey_revoke(key_id: int) -> None:
    """Revoke a key at once."""
    from workers.store import apikeys

    with open_engine().begin() as conn:
        if not apikeys.revoke(conn, key_id, datetime.now(UTC)):
            raise Failure(f"no live API key with id {key_id}")
    click.echo(f"{key_id}: revoked")
