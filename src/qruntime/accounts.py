"""The local account file: where the SDK and CLI find a server URL and token with no arguments.

The server's first start saves its admin token here too, so everything works out of the box on
one machine. Format: ``{"default": "<name>", "accounts": {"<name>": {"url": ..., "token": ...}}}``,
at ``~/.qruntime/accounts.json`` unless ``QRUNTIME_ACCOUNTS_FILE`` names another file. The file
holds secrets, so it is written atomically with mode 0600 (its directory 0700 when created here).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qruntime.domain.errors import QRuntimeError

try:  # POSIX only; elsewhere concurrent writers are not serialised.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ACCOUNTS_FILE_ENV",
    "DEFAULT_ACCOUNT_NAME",
    "Account",
    "AccountError",
    "AccountExistsError",
    "AccountNotFoundError",
    "accounts_file",
    "default_account_name",
    "list_accounts",
    "load_account_config",
    "remove_account",
    "save_account",
    "use_account",
]

ACCOUNTS_FILE_ENV = "QRUNTIME_ACCOUNTS_FILE"
DEFAULT_ACCOUNT_NAME = "default"
_HOW_TO_SAVE = (
    "save one with RuntimeService.save_account(url=..., token=...) "
    "(or set QRUNTIME_URL and QRUNTIME_TOKEN)"
)


class AccountError(QRuntimeError):
    """The account file cannot be read or written as asked."""


class AccountNotFoundError(AccountError, LookupError):
    """No saved account has the requested name (or there is no account file at all)."""


class AccountExistsError(AccountError):
    """Saving would silently replace an account with different values."""


@dataclass(frozen=True)
class Account:
    """One saved server; the token is kept out of ``repr`` so it does not end up in logs."""

    url: str
    token: str = field(repr=False)
    name: str = DEFAULT_ACCOUNT_NAME


def accounts_file() -> Path:
    """Where accounts live: ``$QRUNTIME_ACCOUNTS_FILE`` or ``~/.qruntime/accounts.json``."""
    override = os.environ.get(ACCOUNTS_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".qruntime" / "accounts.json"


def save_account(
    url: str,
    token: str,
    *,
    name: str | None = None,
    overwrite: bool = False,
    set_default: bool = True,
) -> Account:
    """Save (or confirm) an account; refuse to replace different values unless ``overwrite``.

    It becomes the default when ``set_default``, or when the file names no (existing) default.
    """
    name = DEFAULT_ACCOUNT_NAME if name is None else name
    _check_fields(url, token, name)
    account = Account(url=url.rstrip("/"), token=token, name=name)
    path = accounts_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(path):
        config = _read(path)
        accounts = config["accounts"]
        existing = accounts.get(name)
        entry = {"url": account.url, "token": account.token}
        if existing is not None and existing != entry and not overwrite:
            raise AccountExistsError(
                f"an account named {name!r} with different values is already saved in {path}; "
                "pass overwrite=True to replace it"
            )
        accounts[name] = entry
        if set_default or config.get("default") not in accounts:
            config["default"] = name
        _write_atomically(path, config)
    return account


def use_account(name: str) -> Account:
    """Make the saved account ``name`` the default one."""
    path = accounts_file()
    with _locked(path):
        config = _read(path)
        account = _named(path, config, name)
        config["default"] = name
        _write_atomically(path, config)
    return account


def remove_account(name: str) -> str | None:
    """Forget the account ``name``; return the default afterwards (the one left, if only one)."""
    path = accounts_file()
    with _locked(path):
        config = _read(path)
        _named(path, config, name)
        del config["accounts"][name]
        if config.get("default") not in config["accounts"]:
            left = sorted(config["accounts"])
            config["default"] = left[0] if len(left) == 1 else None
        _write_atomically(path, config)
    return config["default"]


def load_account_config(name: str | None = None) -> Account:
    """The named account, or the default one; AccountNotFoundError says how to save one."""
    path = accounts_file()
    config = _read(path)
    wanted = name if name is not None else config.get("default")
    if not config["accounts"]:
        raise AccountNotFoundError(f"no qruntime account is saved in {path}; {_HOW_TO_SAVE}")
    if wanted is None:
        raise AccountNotFoundError(
            f"{path} names no default account; pass a name ({_known(config)}) or {_HOW_TO_SAVE}"
        )
    return _named(path, config, wanted)


def list_accounts() -> list[Account]:
    """Every saved account, sorted by name."""
    path = accounts_file()
    config = _read(path)
    return [_account(path, n, e) for n, e in sorted(config["accounts"].items())]


def default_account_name() -> str | None:
    """The name ``load_account_config()`` uses when given none, if the file names one."""
    return _read(accounts_file()).get("default")


def _named(path: Path, config: dict[str, Any], name: str) -> Account:
    entry = config["accounts"].get(name)
    if entry is None:
        raise AccountNotFoundError(
            f"no qruntime account named {name!r} in {path} ({_known(config)}); {_HOW_TO_SAVE}"
        )
    return _account(path, name, entry)


def _check_fields(url: str, token: str, name: str) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"account url must start with http:// or https://, got {url!r}")
    if not isinstance(token, str) or not token:
        raise ValueError("account token must be a non-empty string")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("account name must be a non-empty string")


def _known(config: dict[str, Any]) -> str:
    names = sorted(config["accounts"])
    return "saved accounts: " + ", ".join(repr(n) for n in names) if names else "none saved"


def _account(path: Path, name: str, entry: Any) -> Account:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("url"), str)
        or not isinstance(entry.get("token"), str)
    ):
        raise AccountError(f"account {name!r} in {path} needs string 'url' and 'token' fields")
    return Account(url=entry["url"], token=entry["token"], name=name)


def _read(path: Path) -> dict[str, Any]:
    """The file's content, or an empty config when it does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"default": None, "accounts": {}}
    except OSError as exc:
        raise AccountError(f"cannot read the account file {path}: {exc}") from exc
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AccountError(f"the account file {path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("accounts", {}), dict):
        raise AccountError(
            f"the account file {path} must hold an object with an 'accounts' object inside"
        )
    config.setdefault("accounts", {})
    config.setdefault("default", None)
    return config


def _write_atomically(path: Path, config: dict[str, Any]) -> None:
    """Write to a 0600 temp file beside ``path`` and rename it, so readers never see half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(config, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles of concurrent savers (server bootstrap and a user)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
