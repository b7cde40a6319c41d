"""The event contract as JSON Schema (2020-12), for producers to check events against.

Generated from the models in ``domain.events``, never written by hand: ``mailroom
schema --out schema`` writes the files of ``schema/`` and a test fails when they
and the models disagree.  Where a model validates in code (addresses, free text)
or by a type (UUID, aware time), the schema carries the rule as a ``pattern``
that Python and JavaScript read alike: a 2020-12 validator treats ``format`` as
a mere annotation unless told otherwise, and would then let through what the
worker refuses.  Where the worker is lenient (a UUID without hyphens, a time
without seconds), the schema asks for the canonical form.
"""

import json
import typing

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from domain.addresses import normalize_address
from domain.events import EVENT_TYPES, SUPPORTED_VERSIONS, Event, _header_safe
from domain.policy import MAX_EVENT_BYTES
from domain.schema_typescript import typescript

#: The dialect every schema declares.
DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: The ``$id`` of the schema of any event; a type's is this plus ``:<type>``.
SCHEMA_ID = "urn:mailroom:schema:event"
#: The file holding the schema of any event (a type's: ``<type>.schema.json``).
EVENT_FILE = "event.schema.json"
#: The generated TypeScript declarations.
TYPESCRIPT_FILE = "mailroom-events.d.ts"

# Character classes spelled out: ``\s`` and ``\d`` mean different things in
# Python's re and in JavaScript.  _CONTROL is what the worker's text check
# refuses; _SPACE what str.strip() removes besides those.
_CONTROL = r"\x00-\x1f\x7f\u2028\u2029"
_SPACE = r" \x85\xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
_NO_ENCODED_WORD = r"(?!.*=\?)"
#: Free text (names): no control characters, encoded words or outer whitespace.
TEXT_PATTERN = rf"^{_NO_ENCODED_WORD}[^{_CONTROL}{_SPACE}](?:[^{_CONTROL}]*[^{_CONTROL}{_SPACE}])?$"
_ATOM = rf'[^{_CONTROL}{_SPACE}@"(),.:;<>\[\]\\]+'
_LABEL = rf'[^{_CONTROL}{_SPACE}@"(),.:;<>\[\]\\_]+'
#: A bare address: dot-atoms, one @, a domain of two labels or more.  The worker
#: (email-validator) is stricter still: reserved domains, label and length rules.
ADDRESS_PATTERN = rf"^{_NO_ENCODED_WORD}{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$"
_HEX = "[0-9a-fA-F]"
#: A UUID in its usual hyphenated form.
UUID_PATTERN = f"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$"
#: An RFC 3339 time with an offset (``new Date().toISOString()``); not a number.
AWARE_TIME_PATTERN = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)

#: What each validator the models run in code becomes in the schema.
_CODE_RULES = {
    # No "format": "email": validators read it as ASCII only (ajv-formats does), and
    # mailroom takes international addresses.
    normalize_address: {
        "pattern": ADDRESS_PATTERN,
        "description": "A bare mailbox address: no display name, quoted local part, "
        "IP literal or encoded word. mailroom also refuses reserved domains "
        "(.local, .test, localhost...), which no pattern tells.",
    },
    _header_safe: {
        "pattern": TEXT_PATTERN,
        "description": "Free text: no control characters (CR, LF, tab...), no encoded "
        "words (=?...?=), no leading or trailing whitespace.",
    },
}

#: The envelope's fields, as the README's table describes them.
_ENVELOPE_DOC = {
    "version": "Envelope version.",
    "id": "A UUID, unique per event: mailroom acts once per id, however often it arrives.",
    "type": "The event type; it decides the shape of data.",
    "source": "The publishing app's id: a-z 0-9 _ . -, at most 64 characters.",
    "occurred_at": "When it happened at the producer: an RFC 3339 string with an offset, "
    "such as new Date().toISOString() gives; not a number.",
    "data": "The type's payload.",
}

#: Where an event goes, and how large it may be (the size no schema can check).
_PUBLISHING = (
    "Publish its JSON as the field `event` of an XADD to the Redis stream "
    f"`mailroom:events`; at most {MAX_EVENT_BYTES} bytes."
)


class _ContractSchema(GenerateJsonSchema):
    def field_title_should_be_set(self, schema) -> bool:
        return False  # "User Id" above user_id tells a reader nothing

    def function_after_schema(self, schema):
        function = schema["function"]["function"]
        if function not in _CODE_RULES:
            raise ValueError(
                f"{function.__qualname__} validates event fields in code, and "
                "domain/schema.py has no JSON Schema rule for it: add one to _CODE_RULES"
            )
        return {**self.generate_inner(schema["schema"]), **_CODE_RULES[function]}

    def uuid_schema(self, schema):
        return {**super().uuid_schema(schema), "pattern": UUID_PATTERN}

    def datetime_schema(self, schema):
        generated = super().datetime_schema(schema)
        if schema.get("tz_constraint") == "aware":
            generated["pattern"] = AWARE_TIME_PATTERN
        return generated


def _event_models() -> dict[str, type]:
    union = typing.get_args(Event)[0]
    return {model.model_fields["type"].annotation.__args__[0]: model for model in union.__args__}


def _generated(target) -> dict:
    schema = TypeAdapter(target).json_schema(mode="validation", schema_generator=_ContractSchema)
    return _anchored(_nullable_flattened(schema))


def _nullable_flattened(node):
    """``anyOf: [{"type": "string", ...}, {"type": "null"}]`` as ``"type": ["string",
    "null"]``: the same rule, and validators then say "42 is not of type 'string',
    'null'" rather than "not valid under any of the given schemas"."""
    if isinstance(node, list):
        return [_nullable_flattened(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _nullable_flattened(value) for key, value in node.items()}
    branches = result.get("anyOf", [])
    if len(branches) == 2 and {"type": "null"} in branches:
        [other] = [branch for branch in branches if branch != {"type": "null"}]
        if isinstance(other.get("type"), str) and not {"enum", "const"} & set(other):
            del result["anyOf"]
            result = {**other, **result, "type": [other["type"], "null"]}
    return result


def _anchored(node):
    """Every pattern anchored at the very end: Python's re (which the jsonschema
    package uses) lets ``$`` match before a final newline; the worker does not."""
    if isinstance(node, list):
        return [_anchored(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _anchored(value) for key, value in node.items()}
    pattern = result.get("pattern")
    if isinstance(pattern, str) and pattern.endswith("$"):
        result["pattern"] = f"{pattern}(?!\\n)"
    return result


def _document_envelope(model_schema: dict) -> None:
    properties = model_schema["properties"]
    properties["version"] = {"type": "integer", "enum": list(SUPPORTED_VERSIONS)}
    for name, text in _ENVELOPE_DOC.items():
        properties[name] = {**properties[name], "description": text}


def type_schema(event_type: str) -> dict:
    """The schema of one event of ``event_type``, envelope and data."""
    models = _event_models()
    if event_type not in models:
        raise KeyError(f"unknown event type {event_type!r}; expected one of {EVENT_TYPES}")
    schema = _generated(models[event_type])
    _document_envelope(schema)
    return {
        "$schema": DIALECT,
        "$id": f"{SCHEMA_ID}:{event_type}",
        **schema,
        "description": f"A mailroom `{event_type}` event. {_PUBLISHING}",
    }


def event_schema() -> dict:
    """The schema of any event: the envelope, and the data its ``type`` calls for.

    A chain of if/then rather than a ``oneOf``: a validator then reports what is
    wrong with the event as its type reads it, not why it fails every other type.
    """
    models = _event_models()
    definitions = _generated(Event)["$defs"]
    for model in models.values():
        _document_envelope(definitions[model.__name__])
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": "MailroomEvent",
        "description": f"Any mailroom event. {_PUBLISHING}",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(EVENT_TYPES), "description": _ENVELOPE_DOC["type"]}},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
                "then": {"$ref": f"#/$defs/{model.__name__}"},
            }
            for event_type, model in models.items()
        ],
        "$defs": definitions,
    }


def schema_text(schema: dict) -> str:
    """A schema as its file holds it: stable key order, a final newline."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_files() -> dict[str, str]:
    """Every file of ``schema/``, by name: what ``mailroom schema --out`` writes."""
    files = {EVENT_FILE: schema_text(event_schema())}
    for event_type in EVENT_TYPES:
        files[f"{event_type}.schema.json"] = schema_text(type_schema(event_type))
    files[TYPESCRIPT_FILE] = typescript(event_schema())
    return files
