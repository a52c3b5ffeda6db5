"""Hardening round 2: each job's stored bytes, and stored text repaired so no read fails on it.

``jobs.stored_bytes`` counts what a job keeps (inputs, source, result, error message, interim
results; its log is ``log_bytes``), for the per-user storage budget. Rows stored before text was
checked at the edge are repaired: a NUL in a plain-text column (only SQLite could store one)
and a lone surrogate escaped in stored JSON become U+FFFD (the rule of ``qruntime/domain/text.py``
as it was then, copied here: a migration never changes with the live code).

Revision ID: 0003_issue18_hardening
Revises: 0003_issue15_job_resources
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003_issue18_hardening"
down_revision: str | None = "0003_issue15_job_resources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: What a lone surrogate or NUL becomes.
_REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A JSON escape of a surrogate: only text with one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def repair_text(text: str) -> str:
    """``text`` with every lone surrogate and NUL replaced by U+FFFD."""
    return _SURROGATE.sub(_REPLACEMENT, text.replace("\x00", _REPLACEMENT))


def _repaired_value(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub(_REPLACEMENT, value)
    if isinstance(value, dict):
        return {_repaired_value(k): _repaired_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repaired_value(item) for item in value]
    return value


def repaired_json_text(text: str) -> str | None:
    """Stored JSON text re-encoded without lone surrogates; None when it needs no repair."""
    if _SURROGATE_ESCAPE.search(text) is None and text.isascii():
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return json.dumps(repair_text(text))
    return json.dumps(_repaired_value(value)) if _has_surrogate(value) else None


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    return False


#: Plain-text columns a NUL may have reached on SQLite, by table and key.
_PLAIN_TEXT = {
    ("programs", "id"): ("name", "description", "version"),
    ("jobs", "id"): ("program_name", "backend", "error_message"),
    ("log_lines", "id"): ("text",),
}
#: Columns holding JSON text, by table and key columns.
_JSON_TEXT = {
    ("jobs", ("id",)): ("inputs", "result"),
    ("interim_results", ("job_id", "seq")): ("data",),
}


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("stored_bytes", sa.BigInteger(), server_default="0", nullable=False)
    )
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE jobs SET stored_bytes = length(inputs) + length(source)"
            " + coalesce(length(result), 0) + coalesce(length(error_message), 0)"
            " + coalesce((SELECT sum(length(i.data)) FROM interim_results i"
            " WHERE i.job_id = jobs.id), 0)"
        )
    )
    if bind.dialect.name == "sqlite":
        for (table, key), columns in _PLAIN_TEXT.items():
            for column in columns:
                _repair_nul(bind, table, key, column)
    for (table, keys), columns in _JSON_TEXT.items():
        for column in columns:
            _repair_json(bind, table, keys, column)
    _repair_spec(bind)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stored_bytes")


def _repair_nul(bind: sa.Connection, table: str, key: str, column: str) -> None:
    rows = bind.execute(
        sa.text(
            f"SELECT {key}, {column} FROM {table} WHERE instr(CAST({column} AS BLOB), X'00') > 0"
        )
    ).all()
    for row_key, value in rows:
        bind.execute(
            sa.text(f"UPDATE {table} SET {column} = :value WHERE {key} = :key"),
            {"value": repair_text(value), "key": row_key},
        )


def _surrogate_escape(bind: sa.Connection, expression: str) -> str:
    """A filter for text that holds ``\\ud8..``-``\\udf..`` (case-insensitively), in SQL."""
    operator = "ILIKE" if bind.dialect.name == "postgresql" else "LIKE"
    return f"{expression} {operator} '%\\ud%' ESCAPE '!'"


def _repair_json(bind: sa.Connection, table: str, keys: tuple[str, ...], column: str) -> None:
    selected = ", ".join(keys)
    rows = bind.execute(
        sa.text(f"SELECT {selected}, {column} FROM {table} WHERE {_surrogate_escape(bind, column)}")
    ).all()
    where = " AND ".join(f"{key} = :k{index}" for index, key in enumerate(keys))
    for *row_keys, value in rows:
        repaired = repaired_json_text(value)
        if repaired is not None:
            params = {f"k{index}": k for index, k in enumerate(row_keys)}
            bind.execute(
                sa.text(f"UPDATE {table} SET {column} = :value WHERE {where}"),
                {"value": repaired, **params},
            )


def _repair_spec(bind: sa.Connection) -> None:
    programs = sa.table("programs", sa.column("id", sa.String), sa.column("spec", sa.JSON))
    rows = bind.execute(
        sa.text(
            "SELECT id, CAST(spec AS TEXT) FROM programs"
            f" WHERE {_surrogate_escape(bind, 'CAST(spec AS TEXT)')}"
        )
    ).all()
    for program_id, text in rows:
        repaired = repaired_json_text(text)
        if repaired is not None:
            bind.execute(
                programs.update()
                .where(programs.c.id == program_id)
                .values(spec=json.loads(repaired))
            )
