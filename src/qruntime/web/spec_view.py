"""A program's JSON Schemas as a page shows them, and the inputs its run form starts from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Keywords shown next to a field, with the words the page uses for them.
_CONSTRAINTS = (
    ("default", "default"),
    ("const", "always"),
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
    ("pattern", "pattern"),
    ("format", "format"),
)
_BLANKS: dict[str, Any] = {
    "integer": 0,
    "number": 0.0,
    "string": "",
    "boolean": False,
    "array": [],
    "object": {},
}


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: str
    required: bool
    description: str
    constraints: list[str]


@dataclass(frozen=True)
class SchemaView:
    """The top-level description and type, the properties of an object schema, the raw schema."""

    type: str
    description: str
    fields: list[SchemaField]
    raw: dict[str, Any]


def schema_view(schema: dict[str, Any] | None) -> SchemaView | None:
    if not schema:
        return None
    required = set(schema.get("required") or [])
    props = schema.get("properties")
    fields = [
        SchemaField(
            name=name,
            type=type_text(prop),
            required=name in required,
            description=str(prop.get("description", "")) if isinstance(prop, dict) else "",
            constraints=constraint_texts(prop),
        )
        for name, prop in (props.items() if isinstance(props, dict) else ())
    ]
    description = str(schema.get("description") or schema.get("title") or "")
    return SchemaView(type_text(schema), description, fields, schema)


def type_text(schema: Any) -> str:
    """``integer``, ``array of number``, ``"a" | "b"``, ``string | null``…; ``any`` if open."""
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list):
        return " | ".join(_literal(v) for v in schema["enum"])
    kind = schema.get("type") or schema.get("x-python-type")
    if isinstance(kind, list):
        return " | ".join(map(str, kind))
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {type_text(schema['items'])}"
    if kind:
        return str(kind)
    for combinator in ("anyOf", "oneOf"):
        if isinstance(schema.get(combinator), list):
            return " | ".join(type_text(option) for option in schema[combinator])
    if "$ref" in schema:
        return f"see {schema['$ref']}"
    return "object" if "properties" in schema else "any"


def constraint_texts(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    return [f"{label} {_literal(schema[key])}" for key, label in _CONSTRAINTS if key in schema]


def input_skeleton(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Required parameters and those with defaults, so the form starts close to valid."""
    props = (parameters or {}).get("properties")
    if not isinstance(props, dict):
        return {}
    required = set((parameters or {}).get("required") or [])
    skeleton: dict[str, Any] = {}
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        if "default" in prop:
            skeleton[name] = prop["default"]
        elif isinstance(prop.get("examples"), list) and prop["examples"]:
            skeleton[name] = prop["examples"][0]
        elif name in required:
            skeleton[name] = _blank(prop)
    return skeleton


def _blank(prop: dict[str, Any]) -> Any:
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    kind = prop.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    value = _BLANKS.get(kind) if isinstance(kind, str) else None
    if kind in ("integer", "number") and isinstance(prop.get("minimum"), int | float):
        value = prop["minimum"]
    return value


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
