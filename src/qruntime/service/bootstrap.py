"""First start: an empty database gets an ``admin`` whose token the local SDK and CLI pick up."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from qruntime.accounts import default_account_name, save_account
from qruntime.domain.errors import DuplicateError
from qruntime.domain.users import Role
from qruntime.service.users import UserService
from qruntime.settings import DEFAULT_PORT
from qruntime.storage import Database, UserRepository

ADMIN_NAME = "admin"
ADMIN_TOKEN_FILE = "admin-token"
#: The account name a server on the default local URL saves itself under.
LOCAL_ACCOUNT_NAME = "local"
LOCAL_URL = f"http://127.0.0.1:{DEFAULT_PORT}"

log = logging.getLogger("qruntime.server")


def ensure_admin(db: Database, data_dir: Path, url: str, *, save_to_accounts: bool = True) -> bool:
    """Create the admin on an empty database; True if this start created it."""
    with db.session() as session:
        if UserRepository(session).count() > 0:
            return False
    try:
        issued = UserService(db).create_user(None, ADMIN_NAME, Role.ADMIN)
    except DuplicateError:  # another replica, starting at the same moment, created it
        return False
    token_file = data_dir / ADMIN_TOKEN_FILE
    _write_private(token_file, issued.token + "\n")
    log.info("created user 'admin'; its token is in %s", token_file)
    if save_to_accounts:
        _save_own_account(url, issued.token)
    return True


def server_account_name(url: str) -> str:
    """``local`` for the default local server, else its URL: never a user's own account name."""
    return LOCAL_ACCOUNT_NAME if url.rstrip("/") == LOCAL_URL else url.rstrip("/")


def _save_own_account(url: str, token: str) -> None:
    """Save under the server's own name; the default only when none is set, never replaced."""
    name = server_account_name(url)
    saved = save_account(url, token, name=name, overwrite=True, set_default=False)
    if default_account_name() == saved.name:
        log.info("saved %s as account %r, the default for the SDK and CLI", url, name)
    else:
        log.info(
            "saved %s as account %r; the default stays %r (switch: qruntime account use %s)",
            url,
            name,
            default_account_name(),
            name,
        )


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
