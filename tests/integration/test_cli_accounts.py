"""``qruntime account`` against a real server whose account file already had a default: the
server saves itself beside it without taking over, and the CLI lists, shows, switches and
removes accounts, naming the account and URL when a server cannot be reached."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from repo_paths import QRUNTIME
from server_harness import ServerProcess

UNREACHABLE = "http://127.0.0.1:1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("accounts")
    accounts = base / "accounts.json"
    accounts.write_text(
        json.dumps(
            {"default": "mine", "accounts": {"mine": {"url": UNREACHABLE, "token": "qrt_mine"}}}
        )
    )
    server = ServerProcess(base / "data", accounts).start()
    try:
        yield server
    finally:
        server.stop()


def cli(server: ServerProcess, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QRUNTIME, *map(str, args)], capture_output=True, text=True, timeout=60, env=server.env()
    )


def listed(server: ServerProcess) -> dict[str, dict]:
    proc = cli(server, "account", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    return {a["name"]: a for a in json.loads(proc.stdout)}


def test_the_server_saves_its_account_beside_the_default_and_the_cli_switches(
    server: ServerProcess,
) -> None:
    accounts = listed(server)
    assert accounts[server.url]["url"] == server.url  # saved under its own URL
    assert accounts["mine"]["default"] is True  # the server did not take the default over
    assert accounts[server.url]["default"] is False

    refused = cli(server, "programs")
    assert refused.returncode == 3, (refused.stdout, refused.stderr)
    assert f"cannot reach the qruntime server at {UNREACHABLE} (saved account 'mine')" in (
        refused.stderr
    )
    assert "qruntime account use NAME" in refused.stderr

    switched = cli(server, "account", "use", server.url)
    assert switched.returncode == 0, switched.stderr
    assert switched.stdout == f"the default account is now {server.url!r} ({server.url})\n"
    assert cli(server, "programs").returncode == 0


def test_save_keeps_the_default_unless_asked_and_tokens_show_only_a_prefix(
    server: ServerProcess,
) -> None:
    cli(server, "account", "use", server.url)
    saved = cli(
        server, "account", "save", "--url", "http://other-host:8765", "--token", "qrt_other_secret",
        "--name", "other",
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert f"the default account is still {server.url!r}" in saved.stdout
    assert cli(server, "programs").returncode == 0  # still talks to the running server

    table = cli(server, "account", "list")
    assert table.returncode == 0, table.stderr
    assert "other" in table.stdout and "http://other-host:8765" in table.stdout
    assert "qrt_othe…" in table.stdout
    assert "qrt_other_secret" not in table.stdout and server.admin_token not in table.stdout

    shown = cli(server, "account", "show", "other")
    assert shown.returncode == 0, shown.stderr
    assert "url:     http://other-host:8765\n" in shown.stdout
    assert "qrt_other_secret" not in shown.stdout
    assert cli(server, "account", "show").stdout.startswith(f"name:    {server.url} (default)\n")

    made_default = cli(
        server, "account", "save", "--url", UNREACHABLE, "--token", "t", "--name", "third",
        "--default",
    )  # fmt: skip
    assert made_default.returncode == 0, made_default.stderr
    assert "'third' is the default account" in made_default.stdout
    assert listed(server)["third"]["default"] is True


def test_remove_forgets_an_account_and_says_what_the_default_is(
    server: ServerProcess, tmp_path: Path
) -> None:
    cli(server, "account", "use", "mine")
    removed = cli(server, "account", "remove", "mine")
    assert removed.returncode == 0, removed.stderr
    assert "removed account 'mine'" in removed.stdout
    assert "no account is the default now; choose one with: qruntime account use NAME" in (
        removed.stdout
    )
    assert "mine" not in listed(server)

    no_default = cli(server, "programs")
    assert no_default.returncode == 2, no_default.stderr
    assert "names no default account" in no_default.stderr
    assert "qruntime account use NAME" in no_default.stderr

    unknown = cli(server, "account", "use", "mine")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: no qruntime account named 'mine'"), unknown.stderr
    cli(server, "account", "use", server.url)
