"""`mailroom publish`: validate events and append them to the ingress stream."""

import json
import sys

import click

from domain.errors import InvalidEvent
from domain.events import EVENT_TYPES
from workers.cli.base import (
    EXIT_FAILED,
    cli,
    current_settings,
    echo_json,
)


def demo_events() -> list[dict]:
    from workers.ingress import new_event

    return [
        new_event(
            "user.signup_requested", {"email": "ada@example.com", "name": "Ada"}, source="demo"
        ),
        new_event(
            "login.code_requested", {"email": "ada@example.com", "user_id": "u-1"}, source="demo"
        ),
        new_event(
            "email.change_requested",
            {"user_id": "u-1", "current_email": "ada@example.com", "new_email": "ada@example.org"},
            source="demo",
        ),
        new_event(
            "password.reset_requested",
            {"email": "ada@example.com", "user_id": "u-1", "account_exists": True},
            source="demo",
        ),
        new_event(
            "invite.created",
            {
                "invite_id": "inv-1",
                "email": "grace@example.com",
                "inviter_name": "Ada",
                "workspace_id": "w-1",
                "workspace_name": "Analytical Engines",
                "role": "member",
            },
            source="demo",
        ),
    ]


def publish_one(redis_url: str, event: dict | str) -> str:
    from workers.ingress import publish

    return publish(event, redis_client=redis_url)


@cli.command()
@click.argument("event_type", metavar="TYPE", required=False, type=click.Choice(EVENT_TYPES))
@click.option("--data", "data", help="The event's data object, as JSON.")
@click.option("--source", default="cli", show_default=True, help="Publishing app id.")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="JSON Lines of complete events ('-' for stdin).",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def publish(event_type, data, source, path, as_json) -> None:
    """Validate events and enqueue them; print each event id.

    \b
    mailroom publish user.signup_requested --data '{"email": "ada@example.com"}'
    mailroom publish --file events.jsonl
    """
    from workers.embedded import redis_url_for
    from workers.ingress import new_event

    if bool(event_type) == bool(path):
        raise click.UsageError("give either TYPE --data JSON or --file PATH")
    if path and data is not None:
        raise click.UsageError("--data goes with TYPE; a --file line is a complete event")
    if event_type:
        if data is None:
            raise click.UsageError("TYPE needs --data JSON")
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="'--data'") from None
        events = [(1, new_event(event_type, payload, source=source))]
    else:
        with click.open_file(path, encoding="utf-8") as handle:
            events = [(n, line.strip()) for n, line in enumerate(handle, 1) if line.strip()]

    redis_url = redis_url_for(current_settings())
    results, failures = [], 0
    for line, event in events:
        try:
            event_id = publish_one(redis_url, event)
            results.append({"line": line, "id": event_id})
            if not as_json:
                click.echo(event_id)
        except InvalidEvent as exc:
            failures += 1
            results.append({"line": line, "error": str(exc), "problems": exc.problems})
            if not as_json:
                where = f"line {line}: " if path else ""
                for problem in exc.problems:  # each on a line of its own, greppable
                    click.echo(f"mailroom: invalid event: {where}{problem}", err=True)
    if as_json:
        echo_json(results)
    if failures:
        sys.exit(EXIT_FAILED)
