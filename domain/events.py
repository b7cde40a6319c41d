"""The event contract: a versioned JSON envelope with one strict schema per type.

Producers publish::

    {"version": 1, "id": "<uuid>", "type": "user.signup_requested",
     "source": "<app id>", "occurred_at": "<RFC 3339 with offset>", "data": {...}}

Unknown fields are rejected, strings are capped, addresses are validated and
normalized.  ``parse_event`` is the only way in; it raises ``InvalidEvent`` with a
one-line reason that ends up on the dead letter.
"""

import json
import re
from datetime import datetime
from itertools import accumulate
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from domain.addresses import MAX_ADDRESS_LENGTH, normalize_address
from domain.apps import APP_ID_PATTERN
from domain.errors import InvalidEvent
from domain.policy import MAX_EVENT_BYTES

#: Envelope versions this build understands.
SUPPORTED_VERSIONS = (1,)

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _header_safe(value: str) -> str:
    # Free text may end up in a Subject or a display name: no line breaks, no
    # control characters, no RFC 2047 encoded words a client would decode.
    if _CONTROL.search(value):
        raise ValueError("control characters (CR, LF, tab...) are not allowed")
    if "=?" in value:
        raise ValueError("encoded words (=?...?=) are not allowed")
    if value != value.strip():
        raise ValueError("leading or trailing whitespace is not allowed")
    return value


Address = Annotated[
    str,
    StringConstraints(min_length=3, max_length=MAX_ADDRESS_LENGTH),
    AfterValidator(normalize_address),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_header_safe)]
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
]
SourceId = Annotated[str, StringConstraints(pattern=f"^{APP_ID_PATTERN}$")]
Locale = Annotated[
    str,
    StringConstraints(max_length=35, pattern=r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$"),
]
Role = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SignupRequested(_Strict):
    email: Address
    user_id: Identifier | None = None
    name: Text | None = None
    locale: Locale | None = None


class LoginCodeRequested(_Strict):
    email: Address
    user_id: Identifier
    name: Text | None = None
    locale: Locale | None = None


class EmailChangeRequested(_Strict):
    user_id: Identifier
    current_email: Address
    new_email: Address
    name: Text | None = None
    locale: Locale | None = None


class PasswordResetRequested(_Strict):
    email: Address
    account_exists: bool
    user_id: Identifier | None = None
    name: Text | None = None
    locale: Locale | None = None


class InviteCreated(_Strict):
    invite_id: Identifier
    email: Address
    inviter_name: Text
    workspace_id: Identifier
    workspace_name: Text
    role: Role
    existing_user: bool = False
    name: Text | None = None
    locale: Locale | None = None


class PasswordChanged(_Strict):
    email: Address
    user_id: Identifier
    name: Text | None = None
    locale: Locale | None = None


class EmailChanged(_Strict):
    user_id: Identifier
    old_email: Address
    new_email: Address
    name: Text | None = None
    locale: Locale | None = None


class _Envelope(_Strict):
    version: int
    id: UUID
    source: SourceId
    occurred_at: AwareDatetime


class SignupEvent(_Envelope):
    type: Literal["user.signup_requested"]
    data: SignupRequested


class LoginCodeEvent(_Envelope):
    type: Literal["login.code_requested"]
    data: LoginCodeRequested


class EmailChangeEvent(_Envelope):
    type: Literal["email.change_requested"]
    data: EmailChangeRequested


class PasswordResetEvent(_Envelope):
    type: Literal["password.reset_requested"]
    data: PasswordResetRequested


class InviteEvent(_Envelope):
    type: Literal["invite.created"]
    data: InviteCreated


class PasswordChangedEvent(_Envelope):
    type: Literal["password.changed"]
    data: PasswordChanged


class EmailChangedEvent(_Envelope):
    type: Literal["email.changed"]
    data: EmailChanged


_EVENT_MODELS = (
    SignupEvent,
    LoginCodeEvent,
    EmailChangeEvent,
    PasswordResetEvent,
    InviteEvent,
    PasswordChangedEvent,
    EmailChangedEvent,
)

Event = Annotated[
    SignupEvent
    | LoginCodeEvent
    | EmailChangeEvent
    | PasswordResetEvent
    | InviteEvent
    | PasswordChangedEvent
    | EmailChangedEvent,
    Field(discriminator="type"),
]

_EVENT = TypeAdapter(Event)

#: Every event type the contract accepts.
EVENT_TYPES = tuple(model.model_fields["type"].annotation.__args__[0] for model in _EVENT_MODELS)


def too_large(size: int) -> str | None:
    """Why an event of ``size`` bytes is refused unread, or None if it is not."""
    if size <= MAX_EVENT_BYTES:
        return None
    return f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}"


def parse_event(raw: str | bytes) -> _Envelope:
    """Validate one JSON event; raise ``InvalidEvent`` with a one-line reason."""
    # Measured before anything is parsed: an oversized event costs no parsing.
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if refused := too_large(size):
        raise InvalidEvent(refused)
    try:
        event = _EVENT.validate_json(raw, strict=True)
    except ValidationError as exc:
        problems = _problems(exc)
        raise InvalidEvent(_describe(problems), problems) from None
    if event.version not in SUPPORTED_VERSIONS:
        raise InvalidEvent(f"version: {event.version} is not supported (supported: 1)")
    return event


#: Field names whose values a dead letter never keeps, should a producer send them.
_SECRET_FIELD = re.compile(r"pass|secret|token|code|otp|pin|credential|key", re.IGNORECASE)
#: A ``"name": value`` pair with such a name, in text that is not valid JSON.  The
#: name is bounded (in characters) so that a hostile text costs linear time, not
#: quadratic (an unclosed ``"passpass...`` would make an unbounded name backtrack).
_SECRET_PAIR = re.compile(
    r'("[^"]{0,64}?(?:pass|secret|token|code|otp|pin|credential|key)[^"]{0,64}"\s*:\s*)'
    r'("(?:[^"\\]|\\.)*"|[^,}\]\s]*)',
    re.IGNORECASE,
)
#: Deepest nesting ``redact`` walks as JSON, in levels; an event has 2.  Deeper
#: text is redacted as text: no parser, walk or comparison can recurse too far.
MAX_REDACT_DEPTH = 32
#: What nesting is counted from: escapes, then strings, then the brackets left.
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(raw: str) -> int:
    """How deeply ``raw`` nests if it is JSON (other text fails to parse anyway)."""
    brackets = _BRACKET.findall(_STRING.sub("", _ESCAPE.sub("", raw)))
    if len(brackets) <= MAX_REDACT_DEPTH:  # the common case, without a loop
        return len(brackets)
    return max(accumulate(1 if b in "[{" else -1 for b in brackets))


def _scrub(node):
    if isinstance(node, dict):
        return {k: "[redacted]" if _SECRET_FIELD.search(k) else _scrub(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(item) for item in node]
    return node


def redact(raw: str) -> str:
    """The raw event as a dead letter keeps it: values under secret-looking names
    are replaced, so a producer's mistake does not leave a password at rest.

    Any text is handled in linear time and without deep recursion, whatever its
    size or nesting (its size is bounded where it is stored, not here).
    """
    if _nesting(raw) <= MAX_REDACT_DEPTH:
        try:
            value = json.loads(raw)
        except ValueError:
            pass
        else:
            cleaned = _scrub(value)
            return raw if cleaned == value else json.dumps(cleaned, ensure_ascii=False)
    # Not JSON, or nested too deep: still no value under a secret-looking name survives.
    return _SECRET_PAIR.sub(r'\1"[redacted]"', raw)


#: Longest field name a reason quotes, in characters.
_NAME_SHOWN = 64


def _shown(part) -> str:
    """A field name as a one-line reason may quote it: printable, and short."""
    name = str(part)
    if not name.isprintable():  # control characters, NUL, lone surrogates
        name = name.encode("unicode_escape").decode("ascii")
    return name if len(name) <= _NAME_SHOWN else f"{name[:_NAME_SHOWN]}..."


def _problems(exc: ValidationError) -> list[str]:
    """Every one of pydantic's errors as one ``field: message`` line."""
    return [_problem(error) for error in exc.errors(include_url=False, include_input=False)]


def _problem(error) -> str:
    # The discriminator tag (the type name) is noise in a path like "data.email".
    loc = [_shown(part) for part in error["loc"] if part not in EVENT_TYPES]
    where = ".".join(loc) or "event"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        message = f"unknown event type; expected one of {', '.join(EVENT_TYPES)}"
        where = "type"
    elif error["type"] == "union_tag_not_found":
        where = "type"
        message = "field required"
    return f"{where}: {message}"


def _describe(problems: list[str]) -> str:
    """The one-line reason a dead letter keeps: the first problem, and how many more."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


def event_payload(*, type: str, source: str, data: dict, id: UUID, occurred_at: datetime) -> dict:
    """The envelope for ``data`` as a JSON-ready dict (what ``publish`` sends)."""
    return {
        "version": SUPPORTED_VERSIONS[-1],
        "id": str(id),
        "type": type,
        "source": source,
        "occurred_at": occurred_at.isoformat(),
        "data": data,
    }
