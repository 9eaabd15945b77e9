"""Avro single-object encoding: the one codec every producer and consumer of oddsflow uses.

Frame (Avro specification, "Single object encoding"): ``C3 01`` marker, the writer schema's
8-byte CRC-64-AVRO fingerprint (little-endian), then the Avro binary body. Any Avro library can
decode it with the ``.avsc`` file alone. A reader resolves the writer's schema by fingerprint and
reads with its own (Avro schema resolution), so old records stay readable after a schema change.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from schemas.fastcodec import EncodeError, Truncated, Unsupported
from schemas.fastcodec import compile_decoder as _compile_decoder
from schemas.fastcodec import compile_encoder as _compile_encoder
from schemas.fastcodec import compile_fields_encoder as _compile_fields_encoder
from schemas.registry import SchemaRegistry, SchemaVersion, default_registry

MARKER = b"\xc3\x01"
HEADER_LEN = 10

__all__ = [
    "HEADER_LEN",
    "MARKER",
    "BadMarker",
    "Codec",
    "CorruptBody",
    "DecodeError",
    "EmptyRecord",
    "EncodeError",
    "TrailingBytes",
    "TruncatedBody",
    "UnknownFingerprint",
    "WrongSchema",
    "default_codec",
]


class DecodeError(ValueError):
    """A record that cannot be decoded; ``reason`` is the dead-letter error class."""

    reason = "undecodable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyRecord(DecodeError):
    """No bytes at all (a Kafka tombstone or an empty value): nothing to decode."""

    reason = "empty_record"


class BadMarker(DecodeError):
    """Does not start with the single-object marker C3 01: not one of our records."""

    reason = "bad_marker"


class UnknownFingerprint(DecodeError):
    """The writer schema is not in the registry (unreleased or foreign schema)."""

    reason = "unknown_fingerprint"


class WrongSchema(DecodeError):
    """A valid record of another schema than the reader expects (wrong topic)."""

    reason = "wrong_schema"


class TruncatedBody(DecodeError):
    """The header or body ends before the writer schema says it does."""

    reason = "truncated_body"


class CorruptBody(DecodeError):
    """The body bytes are no valid encoding of the writer schema (bad index, bad UTF-8...)."""

    reason = "corrupt_body"


class TrailingBytes(DecodeError):
    """Bytes left after the body: a framing error upstream, never silently ignored."""

    reason = "trailing_bytes"


Decoder = Callable[[bytes], dict[str, Any]]


def _fastavro_encoder(parsed: dict[str, Any], header: bytes) -> Callable[[Any], bytes]:
    """The generic fastavro path, for schemas the generator does not handle."""

    def encode(record: Any) -> bytes:
        buf = io.BytesIO()
        buf.write(header)
        schemaless_writer(buf, parsed, record)
        return buf.getvalue()

    return encode


def _fastavro_body_reader(
    writer: dict[str, Any], reader: dict[str, Any] | None
) -> Callable[[bytes, int], tuple[Any, int]]:
    """fastavro's reader (with schema resolution when ``reader`` is given) as (data, pos)."""

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        buf = io.BytesIO(data)
        buf.seek(pos)
        record = schemaless_reader(buf, writer, reader)
        return record, buf.tell()

    return read


class Codec:
    """Encode and decode records of named schemas, framed as single objects.

    Encoders and decoders are generated per schema version (see ``schemas.fastcodec``) and
    cached, so the per-record cost is only the record's own bytes.
    """

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or default_registry()
        self._encoders: dict[str, Callable[[dict[str, Any]], bytes]] = {}
        # reader name (or None) -> 10-byte header -> decoder of the whole frame
        self._decoders: dict[str | None, dict[bytes, Decoder]] = {}

    def encoder(self, name: str) -> Callable[[dict[str, Any]], bytes]:
        """A fast encoder for one schema (looked up once, not per record).

        Timestamps may be ``datetime`` (naive means UTC) or ``int`` microseconds. A record that
        does not fit the schema raises :class:`EncodeError` naming the field.
        """
        enc = self._encoders.get(name)
        if enc is None:
            enc = self._encoders[name] = self._make_encoder(self.registry.get(name))
        return enc

    def _make_encoder(self, sv: SchemaVersion) -> Callable[[dict[str, Any]], bytes]:
        header = MARKER + sv.fingerprint
        parsed = sv.parsed
        try:
            fast = _compile_encoder(parsed, header)
        except Unsupported:
            fast = _fastavro_encoder(parsed, header)

        def encode(record: dict[str, Any]) -> bytes:
            try:
                return fast(record)
            except EncodeError:
                raise
            except Exception as exc:
                raise _encode_error(sv, record, exc) from None

        return encode

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        return self.encoder(name)(record)

    def run_encoders(
        self, name: str, runs: tuple[tuple[str, ...], ...]
    ) -> list[Callable[..., bytes]]:
        """One positional encoder per run of fields (``schemas.fastcodec.compile_fields_encoder``);
        the runs must cover the schema's fields in order, and the first encoder writes the
        single-object header, so ``b"".join(enc(*values) for each run)`` is a whole record.

        Raises Unsupported for a schema the generator does not handle (no fastavro fallback:
        callers use :meth:`encoder` then)."""
        sv = self.registry.get(name)
        order = tuple(f["name"] for f in sv.parsed["fields"])
        if tuple(n for run in runs for n in run) != order:
            raise ValueError(f"runs {runs} do not cover {name}'s fields {order} in order")
        header = MARKER + sv.fingerprint
        return [
            _compile_fields_encoder(sv.parsed, run, header if i == 0 else b"")
            for i, run in enumerate(runs)
        ]

    def writer_of(self, data: bytes) -> SchemaVersion:
        """The schema version that wrote ``data``, from its header."""
        if not data:
            raise EmptyRecord("empty value: no single-object header, nothing to decode")
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
        """Decode ``data``; with ``reader``, resolve it into that schema's current version.

        Every failure is a :class:`DecodeError` subclass whose ``reason`` names the class.
        """
        if data.__class__ is not bytes:
            data = _as_bytes(data)
        table = self._decoders.get(reader)
        if table is not None:
            dec = table.get(data[:HEADER_LEN])
            if dec is not None:
                return dec(data)
        return self._decoder_for(data, reader)(data)

    def _decoder_for(self, data: bytes, reader: str | None) -> Decoder:
        writer = self.writer_of(data)
        reader_sv = writer
        if reader is not None:
            reader_sv = self.registry.get(reader)
            if writer.name != reader_sv.name:
                raise WrongSchema(f"record written as {writer.name}, expected {reader}")
        if reader_sv.fingerprint == writer.fingerprint:
            try:
                body = _compile_decoder(writer.parsed)
            except Unsupported:
                body = _fastavro_body_reader(writer.parsed, None)
        else:
            body = _fastavro_body_reader(writer.parsed, reader_sv.parsed)
        dec = _frame_decoder(writer.name, body)
        self._decoders.setdefault(reader, {})[bytes(data[:HEADER_LEN])] = dec
        return dec


def _as_bytes(data: Any) -> bytes:
    if data is None:
        raise EmptyRecord("no value (tombstone): nothing to decode")
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, bytes):
        return bytes(data)
    raise BadMarker(f"not a single-object Avro record: {type(data).__name__}, not bytes")


def _frame_decoder(name: str, body: Callable[[bytes, int], tuple[Any, int]]) -> Decoder:
    """Wrap a body reader: check the end position and map every failure to a DecodeError."""

    def decode(data: bytes) -> dict[str, Any]:
        try:
            record, end = body(data, HEADER_LEN)
        except (Truncated, EOFError, IndexError, struct.error, StopIteration) as exc:
            raise TruncatedBody(f"{name} body ends early: {exc!s}") from None
        except Exception as exc:  # bad UTF-8, bad index, out-of-range timestamp...
            raise CorruptBody(f"{name} body is corrupt: {type(exc).__name__}: {exc}") from None
        if end != len(data):
            if end > len(data):
                raise TruncatedBody(f"{name} body ends {end - len(data)} bytes early")
            raise TrailingBytes(f"{name} body has {len(data) - end} trailing bytes")
        return record  # type: ignore[no-any-return]

    return decode


def _encode_error(sv: SchemaVersion, record: Any, exc: Exception) -> EncodeError:
    """A readable EncodeError: fastavro's validator names the offending field."""
    try:
        validate(record, sv.parsed, raise_errors=True)
    except ValidationError as verr:
        return EncodeError(f"{sv.name}: record does not fit the schema: {verr}")
    except Exception as verr:
        return EncodeError(f"{sv.name}: record does not fit the schema: {verr!r}")
    return EncodeError(f"{sv.name}: cannot encode record: {type(exc).__name__}: {exc}")


_default: Codec | None = None


def default_codec() -> Codec:
    global _default
    if _default is None:
        _default = Codec()
    return _default
