"""TypeScript declarations written from the event schema (``domain.schema``).

Only the shapes the event schema uses are translated (objects of named
properties, strings, integers, booleans, null, const, enum, anyOf, $ref); any
other shape stops the generation rather than come out as ``any``.
"""

import json
import re

#: The JSON Schema types a TypeScript primitive stands for.
_PRIMITIVES = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
#: What the schema appends to every pattern (see ``domain.schema._anchored``);
#: a reader of the declarations does not need it.
_END_GUARD = "(?!\\n)"

HEADER = (
    "// Generated from the event models (domain/events.py) by `mailroom schema --out schema`:\n"
    "// do not edit. The JSON Schema beside this file (event.schema.json) checks\n"
    "// what types cannot: patterns, lengths, formats.\n"
)


def _name(ref: str) -> str:
    return ref.rpartition("/")[2]


def _type(node: dict) -> str:
    if "$ref" in node:
        return _name(node["$ref"])
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " | ".join(json.dumps(value) for value in node["enum"])
    if "anyOf" in node:
        return " | ".join(_type(branch) for branch in node["anyOf"])
    kinds = node.get("type")
    if isinstance(kinds, str):
        kinds = [kinds]
    if kinds and all(kind in _PRIMITIVES for kind in kinds):
        return " | ".join(_PRIMITIVES[kind] for kind in kinds)
    raise ValueError(f"no TypeScript for the schema {json.dumps(node, sort_keys=True)}")


def _notes(node: dict) -> list[str]:
    """What a property's comment says: its description, else its pattern; its bounds."""
    branch = next((b for b in node.get("anyOf", []) if b.get("type") != "null"), node)
    description = branch.get("description")
    notes = [description] if description else []
    if "pattern" in branch and not description:
        notes.append(f"Pattern: {branch['pattern'].removesuffix(_END_GUARD)}")
    if (longest := branch.get("maxLength")) is not None:
        shortest = branch.get("minLength")
        notes.append(
            f"{shortest}-{longest} characters." if shortest else f"At most {longest} characters."
        )
    if "default" in node:
        notes.append(f"@default {json.dumps(node['default'])}")
    return notes


def _comment(lines: list[str], indent: str) -> list[str]:
    if not lines:
        return []
    safe = [line.replace("*/", "*\\/") for line in lines]
    if len(safe) == 1:
        return [f"{indent}/** {safe[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}" for line in safe), f"{indent} */"]


def _interface(name: str, node: dict) -> list[str]:
    if node.get("type") != "object" or "properties" not in node:
        raise ValueError(f"{name}: only objects with properties become interfaces")
    required = set(node.get("required", ()))
    described = [node["description"]] if "description" in node else []
    lines = [*_comment(described, ""), f"export interface {name} {{"]
    for prop, schema in node["properties"].items():
        key = prop if _IDENTIFIER.match(prop) else json.dumps(prop)
        optional = "" if prop in required else "?"
        lines += _comment(_notes(schema), "  ")
        lines.append(f"  {key}{optional}: {_type(schema)};")
    return [*lines, "}"]


def _union(name: str, comment: str, members: list[str]) -> list[str]:
    alternatives = [f"  | {member}" for member in members]
    alternatives[-1] += ";"
    return [*_comment([comment], ""), f"export type {name} =", *alternatives]


def typescript(event_schema: dict) -> str:
    """The declarations for ``event_schema`` (``domain.schema.event_schema()``)."""
    definitions = event_schema["$defs"]
    events = [_name(rule["then"]["$ref"]) for rule in event_schema["allOf"]]
    order = []
    for event in events:
        data = _name(definitions[event]["properties"]["data"]["$ref"])
        order += [event, data]
    if unused := sorted(set(definitions) - set(order)):
        raise ValueError(f"definitions no event refers to: {', '.join(unused)}")
    blocks = [
        _union(
            "EventType",
            "Every event type mailroom accepts.",
            [json.dumps(t) for t in event_schema["properties"]["type"]["enum"]],
        ),
        _union(event_schema["title"], event_schema["description"], events),
        [
            "/** The data an event of type T carries. */",
            "export type EventData<T extends EventType> = "
            f'Extract<{event_schema["title"]}, {{ type: T }}>["data"];',
        ],
        *(_interface(name, definitions[name]) for name in order),
    ]
    return HEADER + "".join("\n" + "\n".join(block) + "\n" for block in blocks)
