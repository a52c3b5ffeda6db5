"""``qruntime catalogue check``: every rule a catalogue program must meet before it is published.

Each problem is one line naming the file and what is wrong, so a CI log shows them all at once.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qruntime.domain.errors import InvalidMetadataError, InvalidSourceError
from qruntime.domain.metadata import ProgramMetadata, load_metadata
from qruntime.domain.naming import check_program_name, module_to_program_name
from qruntime.domain.source import check_program_source

INJECTED = ("backend", "user_messenger")


@dataclass(frozen=True)
class CatalogueProblem:
    """One broken rule in one file."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_catalogue(directory: Path, tests_dir: Path | None = None) -> list[CatalogueProblem]:
    """All problems of the catalogue in ``directory``; ``tests_dir`` also requires a test file."""
    if not directory.is_dir():
        return [CatalogueProblem(directory, "is not a directory")]
    problems: list[CatalogueProblem] = []
    sources = {p.stem: p for p in directory.glob("*.py")}
    metadata_files = {p.stem: p for p in directory.glob("*.json")}
    if not sources and not metadata_files:
        problems.append(CatalogueProblem(directory, "contains no programs (<name>.py + .json)"))
    for stem in sorted(metadata_files.keys() - sources.keys()):
        problems.append(CatalogueProblem(metadata_files[stem], f"has no source file {stem}.py"))
    for stem in sorted(sources):
        if stem not in metadata_files:
            problems.append(CatalogueProblem(sources[stem], f"has no metadata file {stem}.json"))
            continue
        problems += _check_program(sources[stem], metadata_files[stem], tests_dir)
    return problems


def _check_program(
    source_path: Path, metadata_path: Path, tests_dir: Path | None
) -> list[CatalogueProblem]:
    stem = source_path.stem
    problems = [CatalogueProblem(source_path, m) for m in _file_name_problems(stem)]
    metadata, metadata_problems = _metadata(metadata_path)
    problems += [CatalogueProblem(metadata_path, m) for m in metadata_problems]
    main, source_problems = _main_function(source_path)
    problems += [CatalogueProblem(source_path, m) for m in source_problems]
    if metadata is not None:
        expected = module_to_program_name(stem)
        if metadata.name != expected:
            problems.append(
                CatalogueProblem(
                    metadata_path,
                    f"name {metadata.name!r} does not match the file name: "
                    f"{stem}.py must hold the program {expected!r}",
                )
            )
        problems += [CatalogueProblem(metadata_path, m) for m in _documentation_problems(metadata)]
        if main is not None:
            signature = _signature_problems(main, metadata)
            problems += [CatalogueProblem(source_path, m) for m in signature]
    if tests_dir is not None and not (tests_dir / f"test_{stem}.py").is_file():
        problems.append(
            CatalogueProblem(source_path, f"has no test file {tests_dir / f'test_{stem}.py'}")
        )
    return problems


def _file_name_problems(stem: str) -> list[str]:
    if "-" in stem:
        return [f"file names use underscores where the program name has hyphens: {stem}.py"]
    name_problems = check_program_name(module_to_program_name(stem), location="file name")
    return [f"{p.message} (the program name comes from the file name)" for p in name_problems]


def _metadata(path: Path) -> tuple[ProgramMetadata | None, list[str]]:
    try:
        return load_metadata(path.read_bytes()), []
    except InvalidMetadataError as exc:
        return None, [str(problem) for problem in exc.problems]
    except OSError as exc:
        return None, [f"cannot be read: {exc.strerror}"]


def _main_function(path: Path) -> tuple[ast.FunctionDef | None, list[str]]:
    try:
        text = check_program_source(path.read_bytes(), filename=path.name)
    except InvalidSourceError as exc:
        return None, [problem.message for problem in exc.problems]
    except OSError as exc:
        return None, [f"cannot be read: {exc.strerror}"]
    mains = [n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    return (mains[-1] if mains else None), []


def _documentation_problems(metadata: ProgramMetadata) -> list[str]:
    """Every parameter, the interim results and the return value must say what they are."""
    spec = metadata.spec
    problems = []
    if not metadata.description.strip():
        problems.append("description: is empty; say what the program does")
    parameters = spec.parameters or {}
    properties = parameters.get("properties") or {}
    for name in parameters.get("required") or []:
        if name not in properties:
            problems.append(
                f"spec.parameters: required parameter {name!r} is not described in properties"
            )
    for name, schema in properties.items():
        if not _described(schema):
            problems.append(f"spec.parameters.properties.{name}: has no description")
    for key in ("return_values", "interim_results"):
        schema = getattr(spec, key)
        if schema is None:
            problems.append(f"spec.{key}: is missing; describe it with a JSON Schema")
        elif not _described(schema) and not _all_properties_described(schema):
            problems.append(f"spec.{key}: has no description (of it or of each of its properties)")
        else:
            for name, sub in (schema.get("properties") or {}).items():
                if not _described(sub):
                    problems.append(f"spec.{key}.properties.{name}: has no description")
    return problems


def _described(schema: Any) -> bool:
    return isinstance(schema, dict) and bool(str(schema.get("description", "")).strip())


def _all_properties_described(schema: dict[str, Any]) -> bool:
    properties = schema.get("properties") or {}
    return bool(properties) and all(_described(sub) for sub in properties.values())


def _signature_problems(main: ast.FunctionDef, metadata: ProgramMetadata) -> list[str]:
    """``main`` must accept every documented parameter and document every one it requires."""
    args = main.args
    named = [a.arg for a in [*args.posonlyargs, *args.args]][len(INJECTED) :]
    named += [a.arg for a in args.kwonlyargs]
    positional = [*args.posonlyargs, *args.args][len(INJECTED) :]
    without_default = [a.arg for a in positional[: len(positional) - len(args.defaults)]]
    without_default += [
        a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
    ]
    parameters = metadata.spec.parameters or {}
    properties = set(parameters.get("properties") or {})
    required = set(parameters.get("required") or [])
    where = f"main (line {main.lineno})"
    problems = []
    if args.kwarg is None:
        for name in sorted(properties - set(named)):
            problems.append(f"{where} does not accept the documented parameter {name!r}")
    for name in named:
        if name not in properties:
            problems.append(f"{where} takes {name!r}, which spec.parameters does not document")
        elif name in without_default and name not in required:
            problems.append(
                f"{where} has no default for {name!r}, so spec.parameters must list it as required"
            )
    return problems
