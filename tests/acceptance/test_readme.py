"""The README runs as written: every command block, in order, exactly as printed.

A server with the catalogue is started first (what the README's first command starts), then
each ``bash`` and ``python`` block runs from a scratch directory laid out like a fresh clone
(the repository's files, the test run's virtualenv as ``.venv``). A block that cannot run here
says why on the line before it: ``<!-- readme-test skip: REASON -->`` (see the README's
Development section); any other block must succeed, and the ones below also print what the
README says they print. The README must not link outside the repository, and it names every
command the CLI has.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import typer

from qruntime.cli import app
from server_harness import ServerProcess

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\S*)\s*$")
SKIP = re.compile(r"^<!-- readme-test skip: (\S.*?) -->$")
RUNNABLE = {"bash", "python"}
#: Languages of blocks that are not commands (a layout, an example's output).
NOT_COMMANDS = {"text"}
#: What is not copied into the scratch clone: local environments and state, made by a run.
LOCAL_ONLY = {".git", ".venv", ".venv-latest", ".venv-bench", ".qruntime", "inputs.json"}
#: Generous: a deadline for a block that hangs, not a benchmark (CLI start-up dominates).
BLOCK_TIMEOUT = 600


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.language} block)"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block with the skip reason on the line before it, if any."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
        marker = SKIP.match(lines[index - 1]) if index else None
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(index + 1, opening.group(1), code, marker and marker.group(1)))
        index = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text())
RUN_IN_ORDER = [b for b in BLOCKS if b.skip is None and b.language in RUNNABLE]


# --- what some blocks must print -------------------------------------------------------------


def check_quickstart(out: str) -> None:
    lines = out.splitlines()
    assert "uploaded id-to-delete" in lines
    assert [line.split(",")[0] for line in lines if line.startswith("{'iteration'")] == [
        "{'iteration': 0",
        "{'iteration': 1",
    ]
    assert lines[-1] == "All done!"


def check_cli(out: str) -> None:
    assert re.search(r'^\[1\] \{"iteration": 0, "counts": \{', out, re.M), out
    assert out.count('"All done!"\n') == 2, out  # run, then result of the detached job
    assert re.search(r"^job j-\w+: CANCELLED \(CANCELLED BY USER\)$", out, re.M), out
    assert re.search(r"qiskit-aer\W+\d", out), out  # environment
    assert len(re.findall(r"^qrt_\S+$", out, re.M)) == 1, out  # issue-token; create-user: $TOKEN
    assert "http://other-host:8765" in out and "qrt_...\n" not in out
    assert "removed account 'other'" in out


def check_catalogue(out: str) -> None:
    results = [line for line in out.splitlines() if not line.startswith("[")]
    assert results[0] == '"All done!"', out
    assert '"optimal_energy": -1.8' in results[1], out
    assert '"best_cut"' in results[2], out


def check_run_local(out: str) -> None:
    assert re.search(r'^\[3\] \{"iteration": 2, "counts": \{', out, re.M), out
    assert out.count('"All done!"') == 2, out
    assert '{"type": "result", "data": "All done!"}' in out, out


def check_in_process_test(out: str) -> None:
    assert re.search(r"\b1 passed\b", out), out


#: A distinctive piece of a block, and what the block must print.
EXPECTED: dict[str, Callable[[str], None]] = {
    "examples/quickstart.py": check_quickstart,
    "qruntime upload": check_cli,
    "qruntime run vqe": check_catalogue,
    "qruntime run-local runtime/hello_world.py": check_run_local,
    "def test_hello_world": check_in_process_test,
}


# --- the scratch clone and the server ----------------------------------------------------------


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files as a fresh clone has them, plus the test run's ``.venv``."""
    root = tmp_path_factory.mktemp("clone")
    for entry in REPO.iterdir():
        if entry.name not in LOCAL_ONLY:
            (root / entry.name).symlink_to(entry)
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root


@pytest.fixture(scope="module")
def server(clone: Path) -> Iterator[ServerProcess]:
    base = clone.parent / "server"
    server = ServerProcess(
        base / "data",
        base / "accounts.json",
        extra_args=["--catalogue", str(REPO / "runtime"), "--log-level", "info"],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_block(block: Block, clone: Path, server: ServerProcess) -> subprocess.CompletedProcess[str]:
    if block.language == "bash":
        args = ["bash", "-e", "-o", "pipefail", "-x", "-c", block.code]
    elif "def test_" in block.code:
        script = clone / f"test_readme_line_{block.line}.py"
        script.write_text(block.code)
        args = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider"]
        args += ["-o", "addopts=", str(script)]
    else:
        script = clone / f"readme_line_{block.line}.py"
        script.write_text(block.code)
        args = [sys.executable, str(script)]
    return subprocess.run(
        args,
        cwd=clone,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.timeout(BLOCK_TIMEOUT + 60)
@pytest.mark.parametrize("block", RUN_IN_ORDER, ids=lambda block: f"line-{block.line}")
def test_the_block_runs_as_printed(block: Block, clone: Path, server: ServerProcess) -> None:
    """One test per block, in the README's order (a later block may use an earlier one's file)."""
    done = run_block(block, clone, server)
    output = f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}"
    assert done.returncode == 0, (
        f"{block.where} failed as printed (exit {done.returncode}). Make it run on a fresh "
        "clone against a fresh server, or mark it with '<!-- readme-test skip: REASON -->' "
        f"on the line before it.\n{output}\n--- server log\n{server.log()[-3000:]}"
    )
    assert "Traceback" not in done.stdout + done.stderr, f"{block.where}\n{output}"
    for needle, check in EXPECTED.items():
        if needle in block.code:
            try:
                check(done.stdout)
            except AssertionError as exc:
                raise AssertionError(
                    f"{block.where} printed the wrong thing: {str(exc)[-3000:]}"
                ) from exc


def test_the_blocks_whose_output_is_checked_are_run() -> None:
    for needle in EXPECTED:
        assert any(needle in block.code for block in RUN_IN_ORDER), needle


def test_blocks_say_what_they_are_and_why_one_is_not_run() -> None:
    for block in BLOCKS:
        assert block.language, f"{block.where}: name its language (```bash, ```text, ...)"
        assert block.language in RUNNABLE | NOT_COMMANDS, (
            f"{block.where}: the README test runs bash and python blocks; {block.language!r} "
            "is neither: use one of them, or ```text for what is not a command"
        )
    lines = README.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("<!--") and "readme-test" in line:
            assert SKIP.match(line), f"README.md:{number}: write '<!-- readme-test skip: WHY -->'"
            assert FENCE.match(lines[number]), (
                f"README.md:{number}: a marker goes right above a block"
            )


def test_the_readme_links_only_inside_the_repository() -> None:
    text = README.read_text()
    assert "../" not in text
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"<(https?://[^>]+)>", text)
    assert targets
    for target in targets:
        url = urlparse(target)
        if url.scheme:
            assert url.hostname in ("127.0.0.1", "localhost"), target  # the local server
            continue
        path = (REPO / url.path).resolve()
        assert path.is_relative_to(REPO) and path.exists(), target


def command_paths(group: Any, prefix: str = "") -> Iterator[str]:
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(getattr(command, "commands", None), dict):
            yield from command_paths(command, f"{path} ")
        else:
            yield path


def test_the_readme_names_every_command() -> None:
    text = README.read_text()
    paths = list(command_paths(typer.main.get_group(app)))
    assert "account use" in paths and "environment" in paths
    missing = [
        path
        for path in paths
        if f"qruntime {path}" not in text and not (" " in path and path in text)
    ]
    assert missing == []
