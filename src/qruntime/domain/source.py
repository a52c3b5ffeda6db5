"""Static checks on an uploaded program file: the service must never import code to vet it."""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from typing import Any, NoReturn

from qruntime.domain.errors import InvalidSourceError, Problem

DEFAULT_MAX_SOURCE_BYTES = 1024 * 1024
MAIN_SIGNATURE = "def main(backend, user_messenger, **kwargs)"


def check_program_source(
    source: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
    filename: str = "program.py",
) -> str:
    """Return the decoded text of a valid program, or raise InvalidSourceError saying why not."""
    text = _decode(source, max_bytes)
    if "\x00" in text:
        line, column = _position(text, text.index("\x00"))
        _fail(f"{filename}, line {line}, column {column}: source must not contain a null byte")
    tree = _parse(text, filename)
    problem = _main_problem(tree)
    if problem:
        _fail(f"{filename}: {problem}")
    return text


@dataclass(frozen=True)
class MainSignature:
    """The inputs ``main`` takes by keyword, read from its ``def`` (the source is never run)."""

    #: Parameter names after ``backend`` and ``user_messenger`` that a keyword can fill.
    names: tuple[str, ...]
    #: ``main`` has a ``**kwargs`` parameter: it accepts any input name.
    takes_kwargs: bool

    def accepts(self, name: str) -> bool:
        return self.takes_kwargs or name in self.names

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "takes_kwargs": self.takes_kwargs}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MainSignature:
        return cls(tuple(data["names"]), bool(data["takes_kwargs"]))


def main_signature(source: str) -> MainSignature | None:
    """What ``main`` accepts, or None when the source does not say (a decorator may change it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    binding = None
    for node in tree.body:
        if _binds_main(node):
            binding = node
    if not isinstance(binding, ast.FunctionDef) or binding.decorator_list:
        return None
    args = binding.args
    # backend and user_messenger take the first two positional slots; the rest are inputs.
    passed_by_position = max(0, 2 - len(args.posonlyargs))
    names = [a.arg for a in args.args[passed_by_position:]] + [a.arg for a in args.kwonlyargs]
    return MainSignature(tuple(names), args.kwarg is not None)


def _fail(message: str) -> NoReturn:
    raise InvalidSourceError(Problem("source", message))


def _decode(source: str | bytes, max_bytes: int) -> str:
    if isinstance(source, str):
        try:
            data = source.encode("utf-8")
        except UnicodeEncodeError as exc:
            _fail(f"source is not valid UTF-8: lone surrogate at character offset {exc.start}")
        size = len(data)
    elif isinstance(source, bytes | bytearray):
        data, size = bytes(source), len(source)
    else:
        raise InvalidSourceError(
            Problem("source", f"source must be text or bytes, got {type(source).__name__}")
        )
    if size > max_bytes:
        _fail(f"source is {size} bytes, more than the limit of {max_bytes} bytes")
    if isinstance(source, str):
        return source.removeprefix("\ufeff")
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"source is not valid UTF-8: {exc.reason} at byte offset {bom + exc.start}")


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _parse(text: str, filename: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            # Escape-sequence and similar warnings are the author's business, not a refusal.
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=filename)
    except SyntaxError as exc:
        where = f"line {exc.lineno}, column {exc.offset}" if exc.lineno else "unknown position"
        _fail(f"{filename}, {where}: syntax error: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        _fail(f"{filename}: cannot be parsed: {exc or type(exc).__name__}")


def _main_problem(tree: ast.Module) -> str | None:
    """Why ``main`` cannot be called as ``main(backend, user_messenger, **inputs)``, if it cannot.

    The last top-level binding of ``main`` is the one the runtime would see.
    """
    binding: ast.stmt | None = None
    for node in tree.body:
        if _binds_main(node):
            binding = node
    if isinstance(binding, ast.FunctionDef):
        args = binding.args
        positional = len(args.posonlyargs) + len(args.args)
        if positional >= 2 or args.vararg is not None:
            return None
        return (
            f"main (line {binding.lineno}) takes {positional} positional parameter(s); it must "
            f"accept at least two, backend and user_messenger: {MAIN_SIGNATURE}"
        )
    if isinstance(binding, ast.AsyncFunctionDef):
        return (
            f"main (line {binding.lineno}) is an async def; the runtime calls it synchronously, "
            f"so it must be a plain {MAIN_SIGNATURE}"
        )
    if binding is not None:
        what = _binding_kind(binding)
        return (
            f"main (line {binding.lineno}) is {what}; it must be a top-level function: "
            f"{MAIN_SIGNATURE}"
        )
    nested = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "main"
    ]
    if nested:
        return (
            f"main (line {nested[0].lineno}) is not defined at the top level of the module; "
            f"define {MAIN_SIGNATURE} outside any class, function or block"
        )
    return f"no main function found; define {MAIN_SIGNATURE} at the top level"


def _binds_main(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == "main"
    if isinstance(node, ast.Assign):
        return any(_target_names_main(t) for t in node.targets)
    if isinstance(node, ast.AnnAssign | ast.AugAssign):
        return _target_names_main(node.target)
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.split(".")[0]) == "main" for a in node.names)
    return False


def _target_names_main(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return target.id == "main"
    if isinstance(target, ast.Tuple | ast.List):
        return any(_target_names_main(t) for t in target.elts)
    if isinstance(target, ast.Starred):
        return _target_names_main(target.value)
    return False


def _binding_kind(node: ast.stmt) -> str:
    if isinstance(node, ast.ClassDef):
        return "a class"
    if isinstance(node, ast.Import | ast.ImportFrom):
        return "imported from another module"
    value = getattr(node, "value", None)
    if isinstance(value, ast.Lambda):
        return "assigned a lambda (main = lambda ...)"
    return "assigned a value (main = ...) rather than defined with def"
