"""The README's SDK example runs as written against a fresh server."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from server_harness import ServerProcess

REPO = Path(__file__).resolve().parents[2]


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def test_the_sdk_example_runs(tmp_path: Path):
    example = next(block for block in readme_python_blocks() if "upload_program(" in block)
    script = tmp_path / "sdk_example.py"
    script.write_text(example)
    server = ServerProcess(tmp_path / "data", tmp_path / "accounts.json").start()
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=REPO,
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr + server.log()
        assert "Input parameters:" in done.stdout
        assert "All done!" in done.stdout
        interims = re.findall(r"^j-\w+ \{'iteration': (\d)", done.stdout, re.M)
        assert interims == ["0", "1"]
        with server.client() as client:
            assert client.get("/programs").json()["total"] == 0  # the example deleted it
    finally:
        server.stop()


def test_the_catalogue_example_runs_against_the_published_catalogue(tmp_path: Path):
    example = next(block for block in readme_python_blocks() if '"vqe"' in block)
    script = tmp_path / "catalogue_example.py"
    script.write_text(example)
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "accounts.json",
        extra_args=["--catalogue", str(REPO / "runtime")],
    )
    server.start()
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=REPO,
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr + server.log()
        lines = done.stdout.splitlines()
        counts = ast.literal_eval(lines[0])  # {'00': 497, '11': 481, '01': 22, ...}: noisy
        assert counts["00"] + counts["11"] > 0.85 * sum(counts.values())
        iterations = [int(line.split()[0]) for line in lines[1:-1]]
        assert len(iterations) > 5
        assert iterations == list(range(iterations[0], iterations[0] + len(iterations)))
        assert abs(float(lines[-1]) - (-1.857)) < 0.02
    finally:
        server.stop()
