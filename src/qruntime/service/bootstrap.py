"""First start: an empty database gets an ``admin`` whose token the local SDK and CLI pick up."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from qruntime.accounts import save_account
from qruntime.domain.users import Role
from qruntime.service.users import UserService
from qruntime.storage import Database, UserRepository

ADMIN_NAME = "admin"
ADMIN_TOKEN_FILE = "admin-token"

log = logging.getLogger("qruntime.server")


def ensure_admin(db: Database, data_dir: Path, url: str, *, save_to_accounts: bool = True) -> bool:
    """Create the admin on an empty database; True if this start created it."""
    with db.session() as session:
        if UserRepository(session).count() > 0:
            return False
    issued = UserService(db).create_user(None, ADMIN_NAME, Role.ADMIN)
    token_file = data_dir / ADMIN_TOKEN_FILE
    _write_private(token_file, issued.token + "\n")
    log.info("created user 'admin'; its token is in %s", token_file)
    if save_to_accounts:
        save_account(url, issued.token, overwrite=True)
        log.info("saved %s as the default account for the SDK and CLI", url)
    return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
