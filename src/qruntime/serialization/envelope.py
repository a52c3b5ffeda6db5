"""The envelope codec: values JSON cannot hold travel as ``{"__type__": T, "__value__": V}``.

A :class:`CodecTable` is a fixed list of :class:`Codec` entries; encoding picks the first
codec whose ``matches`` holds, decoding maps ``__type__`` only through the table's names, so a
payload can never name a module or a class to import. Each envelope dialect (qruntime's own,
the 2021 IBM Quantum provider's) is one table; the JSON plumbing here is shared.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from qruntime.domain.errors import QRuntimeError, SerializationError

TYPE_KEY = "__type__"
VALUE_KEY = "__value__"


class UnsupportedTypeError(SerializationError, TypeError):
    """The encoder cannot represent a value; a TypeError too, as ``json`` conventions expect."""


def expect(value: Any, kinds: type | tuple[type, ...], what: str) -> Any:
    """Check a decoded ``__value__`` has the JSON shape a codec needs, before touching it."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ValueError(f"expected {what}, got {type(value).__name__}")
    return value


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(value: Any) -> bytes:
    return base64.b64decode(expect(value, str, "a base64 string"), validate=True)


def type_name(obj: Any) -> str:
    """``module.Qualname`` of a value's type, as error messages name it."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


@dataclass(frozen=True)
class Codec:
    """One supported type: its wire name, how to recognise it, and how to cross the wire."""

    name: str
    matches: Callable[[Any], bool]
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def isa(*types: type) -> Callable[[Any], bool]:
    return lambda obj: isinstance(obj, types)


class CodecTable:
    """One dialect's codecs; order matters where types overlap (the first match encodes)."""

    def __init__(self, codecs: Iterable[Codec]):
        self.codecs: tuple[Codec, ...] = tuple(codecs)
        self.by_name: dict[str, Codec] = {codec.name: codec for codec in self.codecs}

    def names(self) -> list[str]:
        return list(self.by_name)

    def find(self, obj: Any) -> Codec | None:
        return next((codec for codec in self.codecs if codec.matches(obj)), None)

    def unsupported(self, obj: Any) -> UnsupportedTypeError:
        return UnsupportedTypeError(f"cannot serialize object of type {type_name(obj)}")

    def envelop(self, obj: Any, codec: Codec) -> dict:
        return {TYPE_KEY: codec.name, VALUE_KEY: self.claim_subclasses(codec.encode(obj))}

    def default(self, obj: Any) -> dict:
        """``JSONEncoder.default``: the envelope of a value json cannot write itself."""
        codec = self.find(obj)
        if codec is None:
            raise self.unsupported(obj)
        return self.envelop(obj, codec)

    def claim_subclasses(self, obj: Any, path: frozenset[int] = frozenset()) -> Any:
        """Wrap container subclasses a codec owns (``dok_array`` is a dict) before json sees them.

        ``json`` serialises dict/list/tuple subclasses itself without calling ``default()``, so
        this walk is the only chance to route them through the codec table.
        """
        if not isinstance(obj, dict | list | tuple):
            return obj
        if type(obj) not in (dict, list, tuple) and (codec := self.find(obj)) is not None:
            return self.envelop(obj, codec)
        if id(obj) in path:
            raise ValueError("Circular reference detected")
        path = path | {id(obj)}
        if isinstance(obj, dict):
            return {key: self.claim_subclasses(value, path) for key, value in obj.items()}
        return [self.claim_subclasses(item, path) for item in obj]

    def envelope_of(self, obj: dict) -> tuple[Any, Any] | None:
        """``(name, value)`` if ``obj`` is an envelope of this dialect, else None (a plain dict)."""
        if len(obj) != 2 or TYPE_KEY not in obj or VALUE_KEY not in obj:
            return None
        return obj[TYPE_KEY], obj[VALUE_KEY]

    def decode_envelope(self, obj: dict) -> Any:
        """object_hook: runs bottom-up, so nested envelopes in ``__value__`` are already decoded."""
        found = self.envelope_of(obj)
        if found is None:
            return obj
        name, value = found
        codec = self.by_name.get(name) if isinstance(name, str) else None
        if codec is None:
            raise SerializationError(
                f"unknown __type__ {name!r}; known types: {', '.join(sorted(self.by_name))}"
            )
        try:
            return codec.decode(value)
        except QRuntimeError:  # a SerializationError, or a limit (TooLargeError) as it is
            raise
        except Exception as exc:
            raise SerializationError(
                f"malformed __value__ for __type__ {name!r}: {type(exc).__name__}: {exc}"
            ) from exc


class LazyCodecTable(CodecTable):
    """A table whose codecs load on first use: their imports (qiskit, numpy, scipy) cost a
    second, and the CLI and SDK mostly read and write plain JSON."""

    def __init__(self, load: Callable[[], CodecTable]):
        self._load = load
        self._table: CodecTable | None = None

    def _loaded(self) -> CodecTable:
        if self._table is None:
            self._table = self._load()
        return self._table

    @property
    def codecs(self) -> tuple[Codec, ...]:  # type: ignore[override]
        return self._loaded().codecs

    @property
    def by_name(self) -> dict[str, Codec]:  # type: ignore[override]
        return self._loaded().by_name


class EnvelopeEncoder(json.JSONEncoder):
    """``json.dumps(obj, cls=...)`` through ``table``; envelope contents encode recursively."""

    table: ClassVar[CodecTable]

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        return super().iterencode(self.table.claim_subclasses(o), _one_shot)

    def default(self, o: Any) -> Any:
        return self.table.default(o)


class EnvelopeDecoder(json.JSONDecoder):
    """``json.loads(text, cls=...)``; only names in ``table`` are decoded."""

    table: ClassVar[CodecTable]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["object_hook"] = self.table.decode_envelope
        kwargs.pop("object_pairs_hook", None)  # it would silently bypass object_hook
        super().__init__(*args, **kwargs)

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().decode(s, *args, **kwargs)
        except RecursionError:
            # The C scanner recurses once per array/object level and gives up at the stack limit.
            raise SerializationError("invalid JSON: arrays or objects nested too deeply") from None


def loads_with(decoder: type[json.JSONDecoder] | json.JSONDecoder, text: str | bytes) -> Any:
    """Parse ``text``; any invalid or unsafe payload raises SerializationError."""
    try:
        if isinstance(decoder, json.JSONDecoder):
            if isinstance(text, bytes):
                text = text.decode(json.detect_encoding(text), "surrogatepass")
            return decoder.decode(text)
        return json.loads(text, cls=decoder)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"invalid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:  # bytes that are not UTF-8, UTF-16 or UTF-32
        message = f"invalid JSON: the bytes cannot be decoded as text: {exc}"
        raise SerializationError(message) from exc
    except RecursionError:
        raise SerializationError("invalid JSON: arrays or objects nested too deeply") from None
