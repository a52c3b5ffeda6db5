"""Where a client's websocket stream of a job's interim results got to, shared by replicas."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qruntime.storage.models import STREAM_DELIVERIES, utcnow

_TABLE = STREAM_DELIVERIES.c


def delivered_seq(session: Session, token_hash: str, job_id: str) -> int:
    """The last seq sent to this token's stream of the job (0: none, or expired); expired
    rows are dropped on the way."""
    session.execute(delete(STREAM_DELIVERIES).where(_TABLE.expires_at < utcnow()))
    found = session.execute(
        select(_TABLE.seq).where(
            STREAM_DELIVERIES.c.token_hash == token_hash, _TABLE.job_id == job_id
        )
    ).scalar_one_or_none()
    return found or 0


def record_delivered(
    session: Session, token_hash: str, job_id: str, seq: int, ttl: timedelta
) -> None:
    """Sent up to ``seq``, remembered for ``ttl``. Never moves back: a client's old and new
    connection may overlap for a moment."""
    values: dict[str, Any] = {
        "seq": case((_TABLE.seq > seq, _TABLE.seq), else_=seq),
        "expires_at": utcnow() + ttl,
    }
    key = (STREAM_DELIVERIES.c.token_hash == token_hash) & (_TABLE.job_id == job_id)
    if session.execute(update(STREAM_DELIVERIES).where(key).values(values)).rowcount:
        return
    try:
        with session.begin_nested():
            session.execute(
                insert(STREAM_DELIVERIES).values(
                    token_hash=token_hash, job_id=job_id, seq=seq, expires_at=values["expires_at"]
                )
            )
    except IntegrityError:  # the other connection made the row this instant, or the job is gone
        session.execute(update(STREAM_DELIVERIES).where(key).values(values))
