"""``qruntime account``: the saved servers and tokens the other commands use by default."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qruntime.accounts import (
    Account,
    accounts_file,
    default_account_name,
    list_accounts,
    load_account_config,
    remove_account,
    use_account,
)
from qruntime.cli.connection import JsonOption
from qruntime.cli.errors import fail, reports_errors
from qruntime.cli.tables import make_table, print_table
from qruntime.client import RuntimeService
from qruntime.settings import DEFAULT_PORT

account = typer.Typer(
    name="account",
    help="Saved servers and tokens: list, show, save, use (make the default), remove.",
    no_args_is_help=True,
)

#: Seconds ``show`` waits for the server to name the account's instance.
INSTANCE_TIMEOUT = 5.0
#: Characters of a token shown by ``list`` and ``show``: enough to tell tokens apart.
TOKEN_PREFIX_CHARS = 8


@account.command("save")
@reports_errors
def save(
    url: Annotated[
        str, typer.Option(help=f"The server's URL, e.g. http://127.0.0.1:{DEFAULT_PORT}.")
    ],
    token: Annotated[str, typer.Option(help="Your bearer token.")],
    name: Annotated[
        str | None, typer.Option(help="Save under this name. [default: default]")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a saved account of that name.")
    ] = False,
    make_default: Annotated[
        bool,
        typer.Option(
            "--default", help="Make it the default account (it is anyway when there is none)."
        ),
    ] = False,
) -> None:
    """Save a URL and token (file mode 0600); the default only with --default or if none is."""
    try:
        saved = RuntimeService.save_account(
            url, token, name=name, overwrite=overwrite, set_default=make_default
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"saved account {saved.name!r} for {saved.url} in {accounts_file()}")
    default = default_account_name()
    if default == saved.name:
        typer.echo(f"{saved.name!r} is the default account")
    else:
        typer.echo(
            f"the default account is still {default!r}; switch: qruntime account use {saved.name}"
        )


@account.command("list")
@reports_errors
def list_(as_json: JsonOption = False) -> None:
    """Every saved account: name, URL, which is the default, the start of its token."""
    accounts = list_accounts()
    default = default_account_name()
    if as_json:
        typer.echo(json.dumps([_account_json(a, default) for a in accounts], indent=2))
        return
    if not accounts:
        typer.echo(f"no accounts saved in {accounts_file()}")
        return
    table = make_table("name", "url", "default", "token")
    for saved in accounts:
        mark = "*" if saved.name == default else ""
        table.add_row(saved.name, saved.url, mark, _token_prefix(saved.token))
    print_table(table)


@account.command("show")
@reports_errors
def show(
    name: Annotated[
        str | None, typer.Argument(help="The account. [default: the default account]")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """One account: its URL, whether it is the default, the start of its token, and the
    instance CRN the server gives its user (for qiskit-ibm-runtime, docs/compat.md)."""
    found = load_account_config(name)
    default = default_account_name()
    instance, problem = _instance_of(found)
    if as_json:
        shown = _account_json(found, default) | {"instance": instance}
        typer.echo(json.dumps(shown, indent=2))
        return
    typer.echo(
        f"name:    {found.name}{' (default)' if found.name == default else ''}\n"
        f"url:     {found.url}\n"
        f"token:   {_token_prefix(found.token)}\n"
        f"instance: {instance or f'unknown ({problem})'}\n"
        f"file:    {accounts_file()}"
    )


def _instance_of(found: Account) -> tuple[str | None, str | None]:
    """The account's instance CRN as its server says, or None and why the server did not."""
    try:
        user = RuntimeService(found.url, found.token, timeout=INSTANCE_TIMEOUT).current_user()
    except Exception as exc:  # any failure to ask is shown, never fatal to ``show``
        return None, f"the server did not say: {exc}"
    instance = user.get("instance")
    if not isinstance(instance, str):
        return None, "the server names no instance (a qruntime older than this client)"
    return instance, None


@account.command("use")
@reports_errors
def use(name: Annotated[str, typer.Argument(help="The account to make the default.")]) -> None:
    """Make a saved account the default one of the SDK and the other commands."""
    chosen = use_account(name)
    typer.echo(f"the default account is now {chosen.name!r} ({chosen.url})")


@account.command("remove")
@reports_errors
def remove(name: Annotated[str, typer.Argument(help="The account to forget.")]) -> None:
    """Forget a saved account (the server keeps its token valid: revoke it there)."""
    was_default = default_account_name() == name
    default = remove_account(name)
    typer.echo(f"removed account {name!r} from {accounts_file()}")
    if was_default and default is not None:
        typer.echo(f"the default account is now {default!r}")
    elif was_default:
        typer.echo("no account is the default now; choose one with: qruntime account use NAME")


def _token_prefix(token: str) -> str:
    return token[:TOKEN_PREFIX_CHARS] + "…" if len(token) > TOKEN_PREFIX_CHARS else "…"


def _account_json(found: Account, default: str | None) -> dict[str, object]:
    return {
        "name": found.name,
        "url": found.url,
        "default": found.name == default,
        "token_prefix": _token_prefix(found.token),
    }
