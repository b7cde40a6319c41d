"""Publish one event of every type mailroom accepts, from an app without mailroom.

Each event is checked against mailroom's JSON Schema first (``schema/event.schema.json``
at the top of the mailroom checkout, or the output of ``mailroom schema``): the schema
is generated from the models the workers validate with, and an event it refuses would
become an ``invalid_event`` dead letter that only an operator sees.  Then a mistaken
event is refused before it is published::

    pip install -r requirements.txt
    REDIS_URL=redis://localhost:6379/0 python publish_all.py

An app that has mailroom installed can call ``workers.ingress.publish`` instead, which
runs the workers' own validation.
"""

import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import redis
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

#: The stream the workers read, and the one field an entry holds.
STREAM = "mailroom:events"
FIELD = "event"
#: Copy the schema into your app and point MAILROOM_SCHEMA at it.
SCHEMA = Path(
    os.environ.get("MAILROOM_SCHEMA")
    or Path(__file__).resolve().parents[2] / "schema" / "event.schema.json"
)
#: Your app's id: the ``source`` of its events.
SOURCE = "notes"

_VALIDATOR = Draft202012Validator(
    json.loads(SCHEMA.read_text(encoding="utf-8")),
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)


class InvalidEvent(ValueError):
    """An event the workers would refuse: nothing was published."""


def new_event(type_: str, data: dict, source: str = SOURCE) -> dict:
    """A new event of ``type_`` around ``data``: a fresh id, the current time."""
    return {
        "version": 1,
        "id": str(uuid.uuid4()),
        "type": type_,
        "source": source,
        # A string with an offset: never a number, never a naive time.
        "occurred_at": datetime.now(timezone.utc).isoformat(),  # noqa: UP017 (runs on Python 3.10 too)
        "data": data,
    }


def problem_with(event) -> str | None:
    """Why the workers would refuse ``event``, in one line, or None."""
    error = best_match(_VALIDATOR.iter_errors(event))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "event"
    if error.validator == "pattern" and "description" in error.schema:
        return f"{where}: invalid. {error.schema['description']}"
    return f"{where}: {error.message}"


def publish(client: redis.Redis, event: dict) -> str:
    """Check ``event`` against the schema, then append it to the stream; return its id.

    Raises ``InvalidEvent``, publishing nothing, when the workers would refuse it.
    """
    if problem := problem_with(event):
        raise InvalidEvent(problem)
    client.xadd(STREAM, {FIELD: json.dumps(event)})
    return event["id"]


EVENTS = [
    new_event("user.signup_requested", {"email": "ada@example.com", "name": "Ada", "locale": "en"}),
    new_event("login.code_requested", {"email": "ada@example.com", "user_id": "u_123"}),
    new_event(
        "email.change_requested",
        {"user_id": "u_123", "current_email": "ada@example.com", "new_email": "ada@example.org"},
    ),
    new_event(
        "password.reset_requested",
        {"email": "ada@example.com", "account_exists": True, "user_id": "u_123"},
    ),
    new_event(
        "invite.created",
        {
            "invite_id": "inv_9",
            "email": "grace@example.com",
            "inviter_name": "Ada",
            "workspace_id": "w_1",
            "workspace_name": "Analytical Engines",
            "role": "member",
            "existing_user": False,
        },
    ),
    new_event("password.changed", {"email": "ada@example.com", "user_id": "u_123"}),
    new_event(
        "email.changed",
        {"user_id": "u_123", "old_email": "ada@example.com", "new_email": "ada@example.net"},
    ),
]


def main() -> None:
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    with client:
        for event in EVENTS:
            print(f"published {event['type']} {publish(client, event)}")

        # A time as a number (milliseconds, as JavaScript's Date.now() gives): refused.
        mistaken = {
            **new_event("user.signup_requested", {"email": "ada@example.com"}),
            "occurred_at": int(time.time() * 1000),
        }
        try:
            publish(client, mistaken)
        except InvalidEvent as exc:
            print(f"refused before publishing: {exc}")
        else:
            sys.exit("the schema let a numeric occurred_at through")


if __name__ == "__main__":
    main()
