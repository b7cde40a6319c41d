"""An event refused at intake, as its app asks about it by the id it published:
found by its dead letter whether or not mailroom could read the id, and only by
the app its raw content names."""

import json
import uuid

from domain.events import parse_event
from domain.vocabulary import Reason
from tests.conftest import make_event
from workers import intake
from workers.api_events import fate
from workers.store.tables import FailedEmail


def ask(unit, event_id, app: str = "notes"):
    with unit.rt.engine.connect() as conn:
        return fate(conn, uuid.UUID(str(event_id)), app)


def test_an_event_read_but_refused_is_found_by_its_id(unit):
    event = make_event()
    raw = json.dumps(event)
    error = "source 'notes' is not a configured app and no default app is set"
    intake.refuse_event(unit.rt, raw, Reason.UNKNOWN_SOURCE, error, parse_event(raw))

    answer = ask(unit, event["id"])

    assert (answer["outcome"], answer["delivery"], answer["error"]) == (
        "refused:unknown_source", "none", error,
    )  # fmt: skip
    assert (answer["type"], answer["emails"]) == ("user.signup_requested", [])
    assert ask(unit, event["id"], app="billing") is None


def test_an_invalid_event_is_found_by_the_id_its_content_claims_whatever_its_case(unit):
    event = make_event(data={"email": "ada@example.com", "user_id": 42})
    shouted = {**event, "id": event["id"].upper()}
    intake.accept_event(unit.rt, json.dumps(shouted))
    # Another event that merely mentions the id is not it.
    other = make_event(source="billing", data={"email": "ada@example.com", "name": event["id"]})
    intake.accept_event(unit.rt, json.dumps({**other, "version": 7}))
    assert [row.reason for row in unit.rows(FailedEmail)] == ["invalid_event"] * 2

    answer = ask(unit, event["id"])

    assert (answer["outcome"], answer["type"]) == ("refused:invalid_event", "user.signup_requested")
    assert answer["error"] == "data.user_id: Input should be a valid string"
    assert ask(unit, event["id"], app="billing") is None
    assert ask(unit, uuid.uuid4()) is None
