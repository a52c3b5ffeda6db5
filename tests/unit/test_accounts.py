"""The local account file: where it lives, how it is written, what loading it says."""

import json
import os
import stat
from pathlib import Path

import pytest

from qruntime.accounts import (
    Account,
    AccountError,
    AccountExistsError,
    AccountNotFoundError,
    accounts_file,
    default_account_name,
    list_accounts,
    load_account_config,
    remove_account,
    save_account,
    use_account,
)

URL = "http://127.0.0.1:8000"


@pytest.fixture
def account_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "conf" / "accounts.json"
    monkeypatch.setenv("QRUNTIME_ACCOUNTS_FILE", str(path))
    return path


def test_env_overrides_the_default_location(account_path, monkeypatch):
    assert accounts_file() == account_path
    monkeypatch.delenv("QRUNTIME_ACCOUNTS_FILE")
    assert accounts_file() == Path.home() / ".qruntime" / "accounts.json"


def test_saved_file_is_private_and_has_the_documented_shape(account_path):
    save_account(URL, "qrt_secret")
    assert stat.S_IMODE(os.stat(account_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(account_path.parent).st_mode) == 0o700
    assert json.loads(account_path.read_text()) == {
        "default": "default",
        "accounts": {"default": {"url": URL, "token": "qrt_secret"}},
    }
    leftovers = [p.name for p in account_path.parent.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


def test_round_trip_and_default_selection(account_path):
    save_account(URL + "/", "t1")
    save_account("https://other.example", "t2", name="other", set_default=False)
    assert load_account_config() == Account(URL, "t1", "default")
    assert load_account_config("other").url == "https://other.example"
    assert default_account_name() == "default"
    save_account("https://third.example", "t3", name="third")
    assert load_account_config().name == "third"
    assert [a.name for a in list_accounts()] == ["default", "other", "third"]


def test_replacing_different_values_needs_overwrite(account_path):
    save_account(URL, "t1")
    save_account(URL, "t1")  # identical values: fine
    with pytest.raises(AccountExistsError, match="overwrite=True"):
        save_account(URL, "t2")
    save_account(URL, "t2", overwrite=True)
    assert load_account_config().token == "t2"


def test_missing_account_says_how_to_save_one(account_path):
    with pytest.raises(AccountNotFoundError, match="save_account"):
        load_account_config()
    save_account(URL, "t1")
    with pytest.raises(AccountNotFoundError, match=r"'nope'.*'default'"):
        load_account_config("nope")


def test_token_is_not_in_repr():
    assert "secret" not in repr(Account(URL, "secret"))


def test_bad_input_and_corrupt_file(account_path):
    with pytest.raises(ValueError, match="http"):
        save_account("localhost:8000", "t")
    with pytest.raises(ValueError, match="token"):
        save_account(URL, "")
    account_path.parent.mkdir(parents=True)
    account_path.write_text("{not json")
    with pytest.raises(AccountError, match="not valid JSON"):
        load_account_config()


def test_use_and_remove(account_path):
    save_account(URL, "t1", name="a")
    save_account("https://b.example", "t2", name="b", set_default=False)
    save_account("https://c.example", "t3", name="c", set_default=False)
    assert default_account_name() == "a"
    assert use_account("b").url == "https://b.example"
    assert load_account_config().name == "b"
    with pytest.raises(AccountNotFoundError, match="'nope'"):
        use_account("nope")
    assert remove_account("a") == "b"  # not the default: the default stays
    assert remove_account("b") == "c"  # the default, and one is left: that one
    assert remove_account("c") is None
    assert list_accounts() == []
    save_account(URL, "t1", name="a")
    save_account(URL, "t2", name="b", set_default=False)
    save_account(URL, "t3", name="c", set_default=False)
    assert remove_account("a") is None  # two are left: no guess
    with pytest.raises(AccountNotFoundError, match="names no default"):
        load_account_config()
