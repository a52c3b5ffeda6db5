"""``qruntime admin``: users and their tokens (admins only).

Commands that make a token print only the token on stdout, for ``T=$(qruntime admin ...)``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.tables import make_table, print_table
from qruntime.client.users import IssuedToken

#: Ids of tokens start with this; anything else given to revoke-token is a token value.
TOKEN_ID_PREFIX = "tok_"

admin = typer.Typer(
    name="admin", help="Manage users and tokens (admins only).", no_args_is_help=True
)


class Role(StrEnum):
    """``open`` may run public programs; ``user`` may also upload; ``admin`` manages all."""

    open = "open"
    user = "user"
    admin = "admin"


@admin.command("create-user")
@reports_errors
def create_user(
    name: Annotated[str, typer.Argument(help="The new user's name.")],
    role: Annotated[Role, typer.Option(help="What the user may do.")] = Role.user,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a user and print its first token (shown only this once)."""
    with connect(url, token) as service:
        _print_token(service.users.create(name, role.value))


@admin.command("issue-token")
@reports_errors
def issue_token(
    name: Annotated[str, typer.Argument(help="An existing user's name.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Give a user another token and print it (shown only this once)."""
    with connect(url, token) as service:
        _print_token(service.users.issue_token(name))


@admin.command("revoke-token")
@reports_errors
def revoke_token(
    token_or_id: Annotated[
        str, typer.Argument(help="A token id (tok_...) or the token itself.", metavar="TOKEN_OR_ID")
    ],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    with connect(url, token) as service:
        if token_or_id.startswith(TOKEN_ID_PREFIX):
            service.users.revoke_token(token_id=token_or_id)
            typer.echo(f"revoked token {token_or_id}")
        else:
            service.users.revoke_token(token=token_or_id)
            typer.echo("revoked the token")


@admin.command("users")
@reports_errors
def users(
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List users: name, role, created."""
    with connect(url, token) as service:
        found = service.users.list()
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    rows = make_table("name", "role", "created")
    for user in found:
        rows.add_row(user["name"], user["role"], user.get("creation_date") or "")
    print_table(rows)


def _print_token(issued: IssuedToken) -> None:
    typer.echo(f"token id: {issued.token_id}", err=True)
    typer.echo(issued.token)
