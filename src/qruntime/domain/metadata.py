"""Program metadata: one validated model for the seed format, with the 2021 list format folded in.

Every rule is checked up front so a bad upload is refused with all of its problems at once.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from qruntime.domain.errors import InvalidMetadataError, Problem
from qruntime.domain.naming import check_program_name
from qruntime.domain.resources import JobResources
from qruntime.domain.text import text_problem

DEFAULT_MAX_EXECUTION_TIME_CEILING = 8 * 3600
MAX_VERSION_LENGTH = 64
#: Deeper metadata is refused before anything recursive (deepcopy, pydantic, jsonschema) sees it.
MAX_METADATA_DEPTH = 64
DEFAULT_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

TOP_LEVEL_KEYS = ("name", "description", "max_execution_time", "is_public", "version", "spec")
SPEC_KEYS = ("backend_requirements", "parameters", "return_values", "interim_results")
SCHEMA_KEYS = ("parameters", "return_values", "interim_results")

_CEILING = "max_execution_time_ceiling"
_RULE = "qruntime_rule"
_LEGACY_TYPES = {
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "str": "string",
    "string": "string",
    "bool": "boolean",
    "boolean": "boolean",
    "dict": "object",
    "list": "array",
}
_LEGACY_ENTRY_KEYS = ("name", "description", "type", "required")
_EXPECTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
}


def _rule_error(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """Carry (location suffix, message) pairs through pydantic so each becomes its own Problem."""
    message = "; ".join(msg for _, msg in problems)
    return PydanticCustomError(_RULE, "{message}", {"message": message, "problems": problems})


class BackendRequirements(BaseModel):
    """What a backend must offer to run the program; unknown keys are kept for newer backends."""

    model_config = ConfigDict(extra="allow")

    min_num_qubits: int | None = None

    @field_validator("min_num_qubits", mode="before")
    @classmethod
    def _positive_int(cls, value: Any) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise _rule_error(
            [("", f"backend_requirements.min_num_qubits must be an integer >= 1, got {value!r}")]
        )

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.min_num_qubits is not None:
            out["min_num_qubits"] = self.min_num_qubits
        out.update(copy.deepcopy(self.model_extra or {}))
        return out


class ProgramSpec(BaseModel):
    """JSON Schemas for a program's inputs, outputs and interim results."""

    model_config = ConfigDict(extra="forbid")

    backend_requirements: BackendRequirements | None = None
    parameters: dict[str, Any] | None = None
    return_values: dict[str, Any] | None = None
    interim_results: dict[str, Any] | None = None
    #: What each job reserves unless it asks otherwise: ``{"cpus": 2, "memory_bytes": ...,
    #: "gpus": 1}`` (the Ray executor places jobs by it).
    resources: dict[str, Any] | None = None

    @field_validator("resources", mode="after")
    @classmethod
    def _is_resource_request(cls, value: dict[str, Any] | None) -> Any:
        if value is None:
            return value
        try:
            return JobResources.from_json(value).to_json()
        except ValueError as exc:
            raise _rule_error([("", f"spec.{exc}")]) from None

    @field_validator(*SCHEMA_KEYS, mode="before")
    @classmethod
    def _fold_legacy_list(cls, value: Any, info: ValidationInfo) -> Any:
        key = info.field_name or ""
        if value is None or isinstance(value, dict):
            return value
        if not isinstance(value, list):
            raise _rule_error(
                [("", f"spec.{key} must be a JSON Schema object (or a legacy list of entries)")]
            )
        return _legacy_list_to_schema(key, value)

    @field_validator(*SCHEMA_KEYS, mode="after")
    @classmethod
    def _is_json_schema(cls, value: dict[str, Any] | None, info: ValidationInfo) -> Any:
        if value is None:
            return value
        key = info.field_name
        dialect = value.get("$schema")
        if dialect is not None and not isinstance(dialect, str):
            raise _rule_error(
                [("", f"spec.{key} is not a valid JSON Schema: $schema must be a URI")]
            )
        try:
            validator_for(value, default=Draft202012Validator).check_schema(value)
        except SchemaError as exc:
            where = "".join(f"/{part}" for part in exc.path)
            at = f" (at {where})" if where else ""
            raise _rule_error(
                [("", f"spec.{key} is not a valid JSON Schema: {exc.message}{at}")]
            ) from None
        return value

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.backend_requirements is not None:
            out["backend_requirements"] = self.backend_requirements.to_json_dict()
        for key in SCHEMA_KEYS:
            schema = getattr(self, key)
            if schema is not None:
                out[key] = copy.deepcopy(schema)
        if self.resources is not None:
            out["resources"] = dict(self.resources)
        return out


class ProgramMetadata(BaseModel):
    """Validated metadata of one runtime program; build it with :func:`load_metadata`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(default="", strict=True)
    max_execution_time: int
    is_public: bool = Field(default=False, strict=True)
    version: str | None = Field(default=None, strict=True, max_length=MAX_VERSION_LENGTH)
    spec: ProgramSpec = Field(default_factory=ProgramSpec)

    @model_validator(mode="before")
    @classmethod
    def _lift_legacy_keys(cls, data: Any) -> Any:
        """The 2021 format put spec keys at top level; move them under ``spec``."""
        if not isinstance(data, dict) or not any(key in data for key in SPEC_KEYS):
            return data
        data = dict(data)
        spec = data.get("spec")
        if spec is not None and not isinstance(spec, dict):
            return data
        spec = dict(spec or {})
        for key in SPEC_KEYS:
            if key in data and key not in spec:
                spec[key] = data.pop(key)
        data["spec"] = spec
        return data

    @field_validator("name", mode="before")
    @classmethod
    def _name_rule(cls, value: Any) -> Any:
        problems = check_program_name(value, location="")
        if problems:
            raise _rule_error([("", p.message) for p in problems])
        return value

    @field_validator("max_execution_time", mode="before")
    @classmethod
    def _execution_time_rule(cls, value: Any, info: ValidationInfo) -> Any:
        ceiling = (info.context or {}).get(_CEILING, DEFAULT_MAX_EXECUTION_TIME_CEILING)
        limit = f"at most {ceiling} seconds ({_human_seconds(ceiling)})"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _rule_error(
                [
                    (
                        "",
                        "max_execution_time must be a positive integer number of seconds, "
                        f"{limit}; got {value!r}",
                    )
                ]
            )
        if value > ceiling:
            raise _rule_error([("", f"max_execution_time is {value} seconds; it must be {limit}")])
        return value

    def to_json_dict(self) -> dict[str, Any]:
        """Seed-format dict with None fields omitted; loading it again gives an equal model."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "max_execution_time": self.max_execution_time,
            "is_public": self.is_public,
        }
        if self.version is not None:
            out["version"] = self.version
        out["spec"] = self.spec.to_json_dict()
        return out

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        max_execution_time_ceiling: int = DEFAULT_MAX_EXECUTION_TIME_CEILING,
    ) -> ProgramMetadata:
        """Load and validate a metadata JSON file."""
        data = Path(path).read_bytes()
        return load_metadata(data, max_execution_time_ceiling=max_execution_time_ceiling)


def load_metadata(
    data: dict[str, Any] | str | bytes,
    *,
    max_execution_time_ceiling: int = DEFAULT_MAX_EXECUTION_TIME_CEILING,
) -> ProgramMetadata:
    """Parse and validate metadata; raise one InvalidMetadataError listing every problem."""
    if (
        not isinstance(max_execution_time_ceiling, int)
        or isinstance(max_execution_time_ceiling, bool)
        or max_execution_time_ceiling <= 0
    ):
        raise ValueError("max_execution_time_ceiling must be a positive integer")
    raw = _parse(data) if isinstance(data, str | bytes | bytearray) else data
    if not isinstance(raw, dict):
        raise InvalidMetadataError(
            Problem("metadata", f"metadata must be a JSON object, got {_json_kind(raw)}")
        )
    problems = _json_problems(raw)
    if problems:
        raise InvalidMetadataError(problems)
    if raw is data:
        raw = copy.deepcopy(raw)
    try:
        return ProgramMetadata.model_validate(raw, context={_CEILING: max_execution_time_ceiling})
    except ValidationError as exc:
        problems = [p for err in exc.errors() for p in _to_problems(err)]
        raise InvalidMetadataError(problems) from None


def _parse(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        message = f"metadata is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except (ValueError, RecursionError) as exc:
        message = f"metadata is not valid JSON: {exc}"
    raise InvalidMetadataError(Problem("metadata", message))


def _json_problems(raw: dict[str, Any]) -> list[Problem]:
    """Nesting past MAX_METADATA_DEPTH, numbers JSON cannot carry (NaN, infinities, which
    Python's parser accepts and ``1e999`` becomes) and text that is not valid (lone surrogates,
    NUL: see ``domain/text.py``), found without recursing."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(raw, "metadata", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(
                Problem(where, f"{value!r} is not a JSON number; use a finite number or a string")
            )
        elif isinstance(value, str) and (problem := text_problem(value)) is not None:
            problems.append(Problem(where, f"text {problem}"))
        elif isinstance(value, dict | list):
            if depth >= MAX_METADATA_DEPTH:
                return [
                    Problem(where, f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
                ]
            items = value.items() if isinstance(value, dict) else enumerate(value)
            keys = value if isinstance(value, dict) else ()
            for key in keys:
                if isinstance(key, str) and (problem := text_problem(key)) is not None:
                    problems.append(Problem(where, f"a key {problem}"))
            children = [
                (item, where + (f"[{key}]" if isinstance(key, int) else f".{key}"), depth + 1)
                for key, item in items
            ]
            stack.extend(reversed(children))
    return problems


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r} in an object")
        out[key] = value
    return out


def _to_problems(err: ErrorDetails) -> list[Problem]:
    loc = err["loc"]
    location = "metadata" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    field = ".".join(str(p) for p in loc) or "metadata"
    kind = err["type"]
    if kind == _RULE:
        return [Problem(location + suffix, msg) for suffix, msg in err["ctx"]["problems"]]
    if kind == "missing":
        return [Problem(location, f"{field} is required")]
    if kind == "extra_forbidden":
        return [Problem(location, _unknown_key_message(loc))]
    if kind in _EXPECTED:
        got = _json_kind(err["input"])
        return [Problem(location, f"{field} must be {_EXPECTED[kind]}, got {got}")]
    return [Problem(location, f"{field}: {err['msg']}")]


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    if len(loc) == 1 and key in SPEC_KEYS:
        return (
            f"legacy top-level key {key!r} cannot be combined with spec.{key} "
            "or with a spec that is not an object; keep only one"
        )
    allowed = TOP_LEVEL_KEYS if len(loc) == 1 else SPEC_KEYS
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = "metadata" if len(loc) == 1 else ".".join(str(p) for p in loc[:-1])
    message = f"unknown key {key!r} in {where}{hint}; allowed keys are: {', '.join(allowed)}"
    if len(loc) == 1:
        message += f" (and, in the legacy format, {', '.join(SPEC_KEYS)})"
    return message


def _legacy_list_to_schema(key: str, entries: list[Any]) -> dict[str, Any] | None:
    """Turn the 2021 list of ``{name, description, type, required}`` entries into a JSON Schema."""
    problems: list[tuple[str, str]] = []
    props: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    unnamed_ok = key == "return_values" and len(entries) == 1
    for index, entry in enumerate(entries):
        where = f"[{index}]"
        if not isinstance(entry, dict):
            problems.append((where, f"spec.{key} entries must be objects with {_entry_keys()}"))
            continue
        name = entry.get("name", "-" if unnamed_ok else None)
        if name == "-" and not unnamed_ok:
            problems.append((where, f"spec.{key} entry is unnamed ('-'), only allowed alone"))
            continue
        if not isinstance(name, str) or not name:
            problems.append((where, f"spec.{key} entry needs a non-empty string name"))
            continue
        if name in props:
            problems.append((where, f"spec.{key} has more than one entry named {name!r}"))
            continue
        prop, entry_problems = _legacy_entry_to_schema(key, entry)
        problems.extend((where + suffix, msg) for suffix, msg in entry_problems)
        props[name] = prop
        if entry.get("required") is True:
            required.append(name)
    if problems:
        raise _rule_error(problems)
    if key == "return_values":
        if not props:
            return None
        if len(props) == 1:
            ((name, prop),) = props.items()
            title = {} if name == "-" else {"title": name}
            return {"$schema": DEFAULT_SCHEMA_DIALECT, **title, **prop}
    schema: dict[str, Any] = {"$schema": DEFAULT_SCHEMA_DIALECT, "properties": props}
    if required:
        schema["required"] = required
    return schema


def _legacy_entry_to_schema(
    key: str, entry: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    prop: dict[str, Any] = {}
    if "description" in entry:
        if isinstance(entry["description"], str):
            prop["description"] = entry["description"]
        else:
            problems.append((".description", f"spec.{key} entry description must be a string"))
    if "type" in entry:
        text = entry["type"]
        if not isinstance(text, str):
            problems.append((".type", f"spec.{key} entry type must be a string"))
        elif (mapped := _LEGACY_TYPES.get(text.strip().lower())) is not None:
            prop["type"] = mapped
        else:
            prop["x-python-type"] = text
    if not isinstance(entry.get("required", False), bool):
        problems.append((".required", f"spec.{key} entry required must be true or false"))
    # Anything else (default, enum, minimum...) is kept as JSON Schema; check_schema vets it.
    prop.update((k, v) for k, v in entry.items() if k not in _LEGACY_ENTRY_KEYS)
    return prop, problems


def _entry_keys() -> str:
    return ", ".join(_LEGACY_ENTRY_KEYS)


def _json_kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    if type(value) in names:
        return names[type(value)]
    return "number" if isinstance(value, int | float) else type(value).__name__


def _human_seconds(seconds: int) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"
