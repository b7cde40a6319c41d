"""Address guards: wrong codes in a row per app, purpose and address, across
challenges, and the cool-down they earn."""

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from workers.store import sql
from workers.store.tables import AddressGuard


def _guard(app: str, purpose: str, address: str) -> tuple:
    return (AddressGuard.app == app, AddressGuard.purpose == purpose, AddressGuard.email == address)


def is_locked(session: Session, app: str, purpose: str, address: str, now: datetime) -> bool:
    """``address`` is an ``address_key``."""
    guard = session.get(AddressGuard, (app, purpose, address))
    return bool(guard and guard.locked_until and guard.locked_until > now)


def count_failure(
    session: Session,
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
    failures = session.execute(
        sql.insert(session, AddressGuard)
        .values(app=app, purpose=purpose, email=address, failures=1, updated_at=now)
        .on_conflict_do_update(
            index_elements=["app", "purpose", "email"],
            set_={"failures": AddressGuard.failures + 1, "updated_at": now},
        )
        .returning(AddressGuard.failures)
    ).scalar_one()
    if failures < limit:
        return failures, False
    session.execute(
        update(AddressGuard)
        .where(*_guard(app, purpose, address))
        .values(locked_until=now + cooldown, failures=0)
    )
    return failures, True


def clear(session: Session, app: str, purpose: str, address: str, now: datetime) -> None:
    """A right code ends the run of wrong ones."""
    session.execute(
        update(AddressGuard)
        .where(*_guard(app, purpose, address))
        .values(failures=0, locked_until=None, updated_at=now)
    )
