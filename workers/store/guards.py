"""Address guards: wrong codes in a row per app, purpose and address, across
challenges, and the cool-down they earn."""

from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select, update

from workers.store import sql
from workers.store.tables import AddressGuard

GUARDS = AddressGuard.__table__


def _guard(app: str, purpose: str, address: str) -> tuple:
    return (GUARDS.c.app == app, GUARDS.c.purpose == purpose, GUARDS.c.email == address)


#: When an address's cool-down ends (``b_target`` is an ``address_key``).
LOCKED_UNTIL = select(GUARDS.c.locked_until).where(
    GUARDS.c.app == bindparam("b_app"),
    GUARDS.c.purpose == bindparam("b_purpose"),
    GUARDS.c.email == bindparam("b_target"),
)


def is_locked(conn: Connection, app: str, purpose: str, address: str, now: datetime) -> bool:
    parameters = {"b_app": app, "b_purpose": purpose, "b_target": address}
    until = conn.execute(LOCKED_UNTIL, parameters).scalar()
    return bool(until and until > now)


def count_failure(
    conn: Connection,
    app: str,
    purpose: str,
    address: str,
    now: datetime,
    *,
    limit: int,
    cooldown: timedelta,
) -> tuple[int, bool]:
    """Count a wrong code; at ``limit`` in a row the address cools down.

    Returns the failures counted (this one included) and whether the cool-down began.
    """
    failures = conn.execute(
        sql.insert(conn, GUARDS)
        .values(app=app, purpose=purpose, email=address, failures=1, updated_at=now)
        .on_conflict_do_update(
            index_elements=["app", "purpose", "email"],
            set_={"failures": GUARDS.c.failures + 1, "updated_at": now},
        )
        .returning(GUARDS.c.failures)
    ).scalar_one()
    if failures < limit:
        return failures, False
    conn.execute(
        update(GUARDS)
        .where(*_guard(app, purpose, address))
        .values(locked_until=now + cooldown, failures=0)
    )
    return failures, True


def clear(conn: Connection, app: str, purpose: str, address: str, now: datetime) -> None:
    """A right code ends the run of wrong ones."""
    conn.execute(
        update(GUARDS)
        .where(*_guard(app, purpose, address))
        .values(failures=0, locked_until=None, updated_at=now)
    )
