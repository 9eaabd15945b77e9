"""Avro single-object encoding: the one codec every producer and consumer of oddsflow uses.

Frame (Avro specification, "Single object encoding"): ``C3 01`` marker, the writer schema's
8-byte CRC-64-AVRO fingerprint (little-endian), then the Avro binary body. Any Avro library can
decode it with the ``.avsc`` file alone. A reader resolves the writer's schema by fingerprint and
reads with its own (Avro schema resolution), so old records stay readable after a schema change.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.registry import SchemaRegistry, SchemaVersion, default_registry

MARKER = b"\xc3\x01"
HEADER_LEN = 10


class DecodeError(ValueError):
    """A record that cannot be decoded; ``reason`` is the dead-letter error class."""

    reason = "undecodable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadMarker(DecodeError):
    reason = "bad_marker"


class UnknownFingerprint(DecodeError):
    reason = "unknown_fingerprint"


class WrongSchema(DecodeError):
    reason = "wrong_schema"


class TruncatedBody(DecodeError):
    reason = "truncated_body"


class Codec:
    """Encode and decode records of named schemas, framed as single objects."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or default_registry()

    def encoder(self, name: str) -> Callable[[dict[str, Any]], bytes]:
        """A fast encoder for one schema (looked up once, not per record)."""
        sv = self.registry.get(name)
        header = MARKER + sv.fingerprint
        parsed = sv.parsed

        def encode(record: dict[str, Any]) -> bytes:
            buf = io.BytesIO()
            buf.write(header)
            schemaless_writer(buf, parsed, record)
            return buf.getvalue()

        return encode

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        return self.encoder(name)(record)

    def writer_of(self, data: bytes) -> SchemaVersion:
        """The schema version that wrote ``data``, from its header."""
        if len(data) < HEADER_LEN:
            if data[:2] != MARKER[: len(data[:2])]:
                raise BadMarker(f"not a single-object Avro record: starts with {data[:2].hex()!r}")
            raise TruncatedBody(f"record of {len(data)} bytes is shorter than the 10-byte header")
        if data[:2] != MARKER:
            raise BadMarker(
                f"not a single-object Avro record: marker {data[:2].hex()} instead of c301"
            )
        fp = bytes(data[2:HEADER_LEN])
        sv = self.registry.by_fingerprint.get(fp)
        if sv is None:
            raise UnknownFingerprint(f"no known schema has fingerprint {fp.hex()}")
        return sv

    def decode(self, data: bytes, reader: str | None = None) -> dict[str, Any]:
        """Decode ``data``; with ``reader``, resolve it into that schema's current version."""
        writer = self.writer_of(data)
        reader_sv = writer
        if reader is not None:
            reader_sv = self.registry.get(reader)
            if writer.name != reader_sv.name:
                raise WrongSchema(f"record written as {writer.name}, expected {reader}")
        buf = io.BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            record = schemaless_reader(
                buf,
                writer.parsed,
                None if reader_sv is writer else reader_sv.parsed,
            )
        except (EOFError, IndexError, StopIteration) as exc:
            raise TruncatedBody(f"{writer.name} body ends early: {exc!s}") from None
        except Exception as exc:  # fastavro raises a variety on corrupt bodies
            raise TruncatedBody(
                f"{writer.name} body is corrupt: {type(exc).__name__}: {exc}"
            ) from None
        if buf.tell() != len(data):
            raise TruncatedBody(f"{writer.name} body has {len(data) - buf.tell()} trailing bytes")
        return record  # type: ignore[return-value]


_default: Codec | None = None


def default_codec() -> Codec:
    global _default
    if _default is None:
        _default = Codec()
    return _default
