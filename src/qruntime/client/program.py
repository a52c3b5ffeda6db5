"""A runtime program as the server describes it, and a namespace to fill in its inputs."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any

from qruntime.client.exceptions import RuntimeInvalidInputsError
from qruntime.client.program_format import format_program
from qruntime.client.wire import parse_date
from qruntime.domain.errors import InvalidInputsError, InvalidMetadataError
from qruntime.domain.inputs import validate_inputs
from qruntime.domain.metadata import ProgramMetadata, ProgramSpec

__all__ = ["ParameterNamespace", "ProgramParameters", "RuntimeProgram"]


class ParameterNamespace:
    """One attribute per program parameter (None until set), validated against the schema.

    Parameters whose names are not identifiers, or clash with a method, work as items:
    ``namespace["max-iter"] = 3``.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        properties = schema.get("properties") or {}
        object.__setattr__(self, "_schema", dict(schema))
        object.__setattr__(self, "_values", dict.fromkeys(properties))

    @property
    def metadata(self) -> dict[str, Any]:
        """The ``spec.parameters`` JSON Schema the values are checked against."""
        return self._schema

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(self._unknown(name))

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._values:
            raise AttributeError(self._unknown(name))
        self._values[name] = value

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            raise KeyError(self._unknown(name))
        return self._values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(n for n in self._values if n.isidentifier())})

    def to_dict(self) -> dict[str, Any]:
        """The values that were set, as the ``inputs`` of a job."""
        return {name: value for name, value in self._values.items() if value is not None}

    def validate(self) -> None:
        """Raise RuntimeInvalidInputsError naming each missing or invalid parameter."""
        spec = ProgramSpec.model_construct(parameters=self._schema or None)
        metadata = ProgramMetadata.model_construct(spec=spec)
        try:
            validate_inputs(metadata, self.to_dict())
        except (InvalidInputsError, InvalidMetadataError) as exc:
            raise RuntimeInvalidInputsError(str(exc), problems=exc.problems) from None

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"ParameterNamespace({inner})"

    def __str__(self) -> str:
        required = set(self._schema.get("required") or [])
        properties = self._schema.get("properties") or {}
        lines = ["ParameterNamespace (values):"]
        for name, value in self._values.items():
            prop = properties.get(name) or {}
            kind = prop.get("type", "any")
            flag = ", required" if name in required else ""
            description = f" {prop['description']}" if prop.get("description") else ""
            lines.append(f"  {name}: {value!r} ({kind}{flag}){description}")
        return "\n".join(lines)

    def _unknown(self, name: str) -> str:
        known = ", ".join(self._values) or "none"
        return f"{name!r} is not a parameter of this program; its parameters are: {known}"


class ProgramParameters(dict[str, Any]):
    """The ``spec.parameters`` schema; calling it gives a fresh :class:`ParameterNamespace`."""

    def __call__(self) -> ParameterNamespace:
        return ParameterNamespace(self)


class RuntimeProgram:
    """Read-only description of one program; ``str(program)`` prints it for people."""

    def __init__(
        self,
        program_id: str,
        name: str,
        description: str = "",
        *,
        max_execution_time: int = 0,
        parameters: Mapping[str, Any] | None = None,
        return_values: dict[str, Any] | None = None,
        interim_results: dict[str, Any] | None = None,
        backend_requirements: dict[str, Any] | None = None,
        creation_date: dt.datetime | str | None = None,
        update_date: dt.datetime | str | None = None,
        is_public: bool = False,
        owner: str | None = None,
        version: str | None = None,
        data: str | None = None,
    ) -> None:
        self.program_id = program_id
        self.name = name
        self.description = description
        self.max_execution_time = max_execution_time
        self.parameters = ProgramParameters(parameters or {})
        self.return_values = return_values
        self.interim_results = interim_results
        self.backend_requirements = backend_requirements
        self.creation_date = parse_date(creation_date) or creation_date
        self.update_date = parse_date(update_date) or update_date
        self.is_public = is_public
        self.owner = owner
        self.version = version
        self.data = data

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RuntimeProgram:
        """Build from the API's program object (``ProgramPublic``)."""
        spec = body.get("spec") or {}
        return cls(
            program_id=body["id"],
            name=body.get("name", body["id"]),
            description=body.get("description") or "",
            max_execution_time=body.get("max_execution_time") or 0,
            parameters=spec.get("parameters"),
            return_values=spec.get("return_values"),
            interim_results=spec.get("interim_results"),
            backend_requirements=spec.get("backend_requirements"),
            creation_date=body.get("creation_date"),
            update_date=body.get("update_date"),
            is_public=bool(body.get("is_public", False)),
            owner=body.get("owner"),
            version=body.get("version"),
            data=_decode_source(body.get("data")),
        )

    @property
    def metadata(self) -> dict[str, Any]:
        """The program's metadata in the upload format, e.g. to save next to its source."""
        spec: dict[str, Any] = {}
        for key in ("backend_requirements", "parameters", "return_values", "interim_results"):
            value = getattr(self, key)
            if value:
                spec[key] = dict(value)
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "max_execution_time": self.max_execution_time,
            "is_public": self.is_public,
        }
        if self.version is not None:
            out["version"] = self.version
        out["spec"] = spec
        return out

    def __str__(self) -> str:
        return format_program(self)

    def __repr__(self) -> str:
        return f"<RuntimeProgram({self.program_id!r})>"


def _decode_source(data: Any) -> str | None:
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
