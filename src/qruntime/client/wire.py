"""Small conversions between the REST wire format and Python values, shared by the SDK types."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from qruntime.serialization import RuntimeDecoder

__all__ = ["Decoder", "decode_text", "decode_value", "format_date", "parse_date"]

#: A ``json.JSONDecoder`` subclass, or a class with a ``decode(text)`` classmethod (2021 style).
Decoder = type[Any]


def parse_date(value: Any) -> dt.datetime | None:
    """``2021-07-02T13:45:13Z`` to an aware datetime; None stays None, garbage is kept as None."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_date(value: dt.datetime | str | None) -> str:
    """The API's own form, ``2021-07-02T13:45:13Z``, whatever form the value is in."""
    if value is None:
        return "None"
    if isinstance(value, str):
        parsed = parse_date(value)
        if parsed is None:
            return value
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_text(text: str | bytes, decoder: Decoder | None = None) -> Any:
    """Decode a JSON document holding RuntimeEncoder envelopes with ``decoder``."""
    cls = decoder or RuntimeDecoder
    if isinstance(cls, type) and issubclass(cls, json.JSONDecoder):
        return json.loads(text, cls=cls)
    return cls.decode(text if isinstance(text, str) else text.decode("utf-8"))


def decode_value(value: Any, decoder: Decoder | None = None) -> Any:
    """Decode an already-parsed JSON value (from an event or a list) with ``decoder``."""
    return decode_text(json.dumps(value), decoder)
