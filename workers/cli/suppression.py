"""`mailroom suppression ...`: the addresses mail is not sent to."""

from datetime import UTC, datetime, timedelta

import click

from domain.apps import APP_ID_RULE, is_app_id
from workers.cli.base import Failure, address_key_of, cli, echo_json, open_engine, table


@cli.group()
def suppression() -> None:
    """Addresses mail is not sent to: bounced, complained, by an admin."""


def _scope(ctx, param, value: str | None) -> str | None:
    if value is not None and value != "*" and not is_app_id(value):
        raise click.BadParameter(APP_ID_RULE)
    return value


def _record(row, now: datetime) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "address": row.address_key,
        "app": row.scope,
        "reason": row.reason,
        "source": row.source,
        "detail": row.detail,
        "email_id": str(row.email_id) if row.email_id else None,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "live": row.expires_at is None or row.expires_at > now,
    }


@suppression.command("list")
@click.option("--address", callback=address_key_of, help="Only this address.")
@click.option("--app", "app", callback=_scope, help="Only this app's (`*`: every app's).")
@click.option("--all", "include_expired", is_flag=True, help="Expired ones too.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def suppression_list(address, app, include_expired: bool, limit: int, as_json: bool) -> None:
    """List suppressed addresses, newest first."""
    from workers.store import suppressions

    now = datetime.now(UTC)
    with open_engine().connect() as conn:
        rows = suppressions.listing(
            conn, now, address_key=address, scope=app, include_expired=include_expired, limit=limit
        )
    records = [_record(row, now) for row in rows]
    if as_json:
        echo_json(records)
    elif not records:
        click.echo("no suppressed addresses", err=True)
    else:
        table(
            ["ADDRESS", "APP", "REASON", "SOURCE", "SINCE", "UNTIL"],
            [
                [r["address"], r["app"], r["reason"], r["source"], r["created_at"][:19],
                 (r["expires_at"] or "lifted by an admin")[:19]]
                for r in records
            ],
        )  # fmt: skip


@suppression.command("add")
@click.argument("address", callback=address_key_of)
@click.option("--app", callback=_scope, help="Only for this app. Default: every app.")
@click.option("--days", type=click.IntRange(1), help="Lift it after this many days.")
@click.option("--note", help="Why, for whoever reads the list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def suppression_add(address: str, app, days, note, as_json: bool) -> None:
    """Stop all mail to ADDRESS (every kind, for one app or all)."""
    from domain.feedback import Source
    from domain.suppression import ALL_APPS, Suppression
    from domain.vocabulary import Suppressed
    from workers.store import suppressions

    now = datetime.now(UTC)
    scope = app or ALL_APPS
    app = None if scope == ALL_APPS else app
    until = now + timedelta(days=days) if days else None
    with open_engine().begin() as conn:
        suppressions.put(
            conn, address, Suppression(scope, Suppressed.MANUAL, until),
            source=Source.ADMIN, detail=note, email_id=None, now=now,
        )  # fmt: skip
        [row] = suppressions.listing(conn, now, address_key=address, scope=scope)
    if as_json:
        echo_json(_record(row, now))
    else:
        lasting = f"until {until.isoformat()[:19]}" if until else "until removed"
        click.echo(f"{address}: suppressed for {'every app' if app is None else app}, {lasting}")


@suppression.command("remove")
@click.argument("address", callback=address_key_of)
@click.option(
    "--app", callback=_scope, help="Only this app's suppression (`*`: the every-app one)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def suppression_remove(address: str, app, as_json: bool) -> None:
    """Lift ADDRESS's suppressions, so mail goes to it again."""
    from workers.store import suppressions

    with open_engine().begin() as conn:
        removed = suppressions.remove(conn, address, app)
    if as_json:
        echo_json({"address": address, "removed": removed})
    if not removed:
        raise Failure(f"{address} is not suppressed" + (f" for {app}" if app else ""))
    if not as_json:
        click.echo(f"{address}: {removed} suppression{'s' if removed > 1 else ''} lifted")
