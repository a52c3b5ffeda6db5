"""Turn uploaded source text into a module, so tracebacks show the program's own lines."""

from __future__ import annotations

import linecache
import sys
import types

from qruntime.domain.naming import program_name_to_module

#: Name the program's module gets in ``sys.modules``; never one a real package could own.
PROGRAM_MODULE = "qruntime_user_program"


def program_filename(program_name: str) -> str:
    """``hello-world`` -> ``hello_world.py``, the file name the seed gives the source."""
    return program_name_to_module(program_name) + ".py"


def load_program(
    source: str,
    program_name: str,
    *,
    module_name: str = PROGRAM_MODULE,
    filename: str | None = None,
) -> types.ModuleType:
    """Execute the source as a fresh module; its top-level code runs here.

    The module is registered in ``sys.modules`` because dataclasses and pickling need that.
    """
    filename = filename or program_filename(program_name)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module
