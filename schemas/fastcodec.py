"""Schema-specialized Avro binary encoders and decoders, generated as Python source per schema.

Why: fastavro's generic writer/reader interprets the schema on every record (~150k records/s for
an OddsLine); a function written for one schema does only the work that schema needs. The bytes
are exactly Avro binary (the tests compare them with fastavro's output for every schema), and
small caches exploit what a stream repeats: team codes, book keys, game ids, first-pitch and
fetch timestamps.

Supported: every primitive, enum, fixed, array, map, record (non-recursive), unions of null and
one other type, and the timestamp-micros / timestamp-millis logical types. Anything else raises
:class:`Unsupported` and the codec falls back to fastavro for that schema.

Encoders take the record as a dict (timestamps as aware/naive-UTC ``datetime`` or ``int``
microseconds) and raise :class:`EncodeError` naming the field on a value that does not fit.
Decoders take ``(data, pos)`` and return the record dict; they raise :class:`Truncated` or
:class:`Corrupt` (or a low-level ``IndexError``/``struct.error``, meaning truncated) on bad bytes.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Mapping
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_NAIVE = dt.datetime(1970, 1, 1)
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
CACHE_MAX = 50_000  # entries per cache; cleared when full (bounded memory, still ~all hits)
CACHE_STR_LEN = 64  # only short strings (codes, keys, ids) are cached

_pack_d = struct.Struct("<d").pack
_pack_f = struct.Struct("<f").pack
_unpack_d = struct.Struct("<d").unpack_from
_unpack_f = struct.Struct("<f").unpack_from


class Unsupported(Exception):
    """The schema uses something the generator does not handle; use fastavro instead."""


class EncodeError(ValueError, TypeError):
    """A record does not fit its schema (a ValueError and a TypeError, as fastavro raised)."""


class Truncated(Exception):
    """The body ends before the schema says it does."""


class Corrupt(Exception):
    """The body's bytes are not a valid encoding of the schema."""


# --- encoding helpers ------------------------------------------------------------------------


def enc_long(n: int) -> bytes:
    """Zigzag varint of a long."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return bytes((z,))
    if 0x2000000000000 <= z < 0x100000000000000:  # 8 bytes: timestamps in micros
        x = (
            (z & 0x7F)
            | ((z & 0x3F80) << 1)
            | ((z & 0x1FC000) << 2)
            | ((z & 0xFE00000) << 3)
            | ((z & 0x7F0000000) << 4)
            | ((z & 0x3F800000000) << 5)
            | ((z & 0x1FC0000000000) << 6)
            | ((z & 0xFE000000000000) << 7)
        )
        return (x | 0x0080808080808080).to_bytes(8, "little")
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _bad(path: str, value: Any, expected: str) -> EncodeError:
    return EncodeError(f"{path}: {value!r} ({type(value).__name__}) is not a valid {expected}")


def chk_int(v: Any, path: str, lo: int, hi: int, kind: str) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
        return int(v)
    raise _bad(path, v, kind)


def chk_float(v: Any, path: str, kind: str) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    raise _bad(path, v, kind)


def chk_bytes(v: Any, path: str) -> bytes:
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    raise _bad(path, v, "bytes")


_STR_CACHE: dict[str, bytes] = {}


def enc_str(v: Any, path: str) -> bytes:
    """Length-prefixed UTF-8 of a string, cached for short strings."""
    if not isinstance(v, str):
        raise _bad(path, v, "string")
    b = v.encode()
    out = enc_long(len(b)) + b
    if len(v) <= CACHE_STR_LEN:
        if len(_STR_CACHE) >= CACHE_MAX:
            _STR_CACHE.clear()
        _STR_CACHE[v] = out
    return out


_TS_CACHE_MICROS: dict[dt.datetime, bytes] = {}
_TS_CACHE_MILLIS: dict[dt.datetime, bytes] = {}


def to_micros(v: Any, path: str) -> int:
    """Microseconds since the epoch of a datetime (naive = UTC, as fastavro) or an int."""
    if isinstance(v, dt.datetime):
        d = v - (EPOCH_NAIVE if v.tzinfo is None else EPOCH)
        return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    if isinstance(v, int) and not isinstance(v, bool) and LONG_MIN <= v <= LONG_MAX:
        return int(v)
    raise _bad(path, v, "timestamp (datetime or int)")


def enc_ts_micros(v: Any, path: str) -> bytes:
    if v.__class__ is int:
        if LONG_MIN <= v <= LONG_MAX:
            return enc_long(v)
        raise _bad(path, v, "timestamp-micros")
    out = enc_long(to_micros(v, path))
    if len(_TS_CACHE_MICROS) >= CACHE_MAX:
        _TS_CACHE_MICROS.clear()
    _TS_CACHE_MICROS[v] = out
    return out


def enc_ts_millis(v: Any, path: str) -> bytes:
    if v.__class__ is int:
        if LONG_MIN <= v <= LONG_MAX:
            return enc_long(v)
        raise _bad(path, v, "timestamp-millis")
    out = enc_long(to_micros(v, path) // 1000)
    if len(_TS_CACHE_MILLIS) >= CACHE_MAX:
        _TS_CACHE_MILLIS.clear()
    _TS_CACHE_MILLIS[v] = out
    return out


def chk_record(v: Any, path: str) -> Mapping[str, Any]:
    if isinstance(v, Mapping):
        return v
    raise _bad(path, v, "record (mapping)")


def chk_seq(v: Any, path: str) -> list[Any] | tuple[Any, ...]:
    if isinstance(v, list | tuple):
        return v
    raise _bad(path, v, "array (list)")


# --- decoding helpers ------------------------------------------------------------------------


def read_long(d: bytes, pos: int) -> tuple[int, int]:
    """Zigzag varint at ``pos``: (value, next position). One and two bytes first: lengths of
    strings up to 8 KiB and block counts (the generated code reads one-byte lengths inline)."""
    b = d[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    z = d[pos + 1]
    if z < 0x80:
        z = (b & 0x7F) | (z << 7)
        return (z >> 1) ^ -(z & 1), pos + 2
    if pos + 8 <= len(d):
        x = int.from_bytes(d[pos : pos + 8], "little")
        if (x & 0x8080808080808080) == 0x0080808080808080:  # exactly 8 bytes
            x &= 0x7F7F7F7F7F7F7F7F
            x = (x & 0x007F007F007F007F) | ((x & 0x7F007F007F007F00) >> 1)
            x = (x & 0x00003FFF00003FFF) | ((x & 0x3FFF00003FFF0000) >> 2)
            x = (x & 0x000000000FFFFFFF) | ((x & 0x0FFFFFFF00000000) >> 4)
            return (x >> 1) ^ -(x & 1), pos + 8
    z = 0
    shift = 0
    while True:
        b = d[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
        if shift > 63:
            raise Corrupt(f"varint longer than 10 bytes at {pos}")


def read_len(d: bytes, pos: int) -> tuple[int, int]:
    n, pos = read_long(d, pos)
    if n < 0:
        raise Corrupt(f"negative length {n} at {pos}")
    if pos + n > len(d):
        raise Truncated(f"length {n} at {pos} runs past the end ({len(d)} bytes)")
    return n, pos


def read_count(d: bytes, pos: int, min_item: int) -> tuple[int, int]:
    """Block count of an array or map (negative counts carry a byte size, skipped)."""
    c, pos = read_long(d, pos)
    if c < 0:
        c = -c
        _, pos = read_long(d, pos)
    if c * min_item > len(d) - pos:
        raise Truncated(f"block of {c} items at {pos} runs past the end")
    return c, pos


_TS_DEC_MICROS: dict[bytes, dt.datetime] = {}
_TS_DEC_MILLIS: dict[bytes, dt.datetime] = {}


def read_ts(d: bytes, pos: int, scale: int) -> tuple[dt.datetime, int]:
    """A timestamp as an aware UTC datetime; 8-byte encodings are cached by their bytes."""
    start = pos
    v, pos = read_long(d, pos)
    try:
        out = EPOCH + dt.timedelta(microseconds=v * scale)
    except OverflowError:
        raise Corrupt(f"timestamp {v} out of range at {start}") from None
    if pos - start == 8:
        cache = _TS_DEC_MICROS if scale == 1 else _TS_DEC_MILLIS
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[d[start:pos]] = out
    return out, pos


# --- code generation -------------------------------------------------------------------------

_PRIMITIVE_MIN_SIZE = {
    "null": 0,
    "boolean": 1,
    "int": 1,
    "long": 1,
    "float": 4,
    "double": 8,
    "bytes": 1,
    "string": 1,
}


class _Gen:
    """Shared state of one generation: named types, constants and fresh variable names."""

    def __init__(self, schema: Any) -> None:
        self.named: dict[str, dict[str, Any]] = {}
        self.consts: dict[str, Any] = {}
        self.lines: list[str] = []
        self.n = 0
        self.stack: list[str] = []
        self._collect(schema)

    def _collect(self, s: Any) -> None:
        if isinstance(s, list):
            for b in s:
                self._collect(b)
        elif isinstance(s, dict):
            t = s.get("type")
            if t in ("record", "error", "enum", "fixed"):
                self.named[s["name"]] = s
            if t in ("record", "error"):
                for f in s["fields"]:
                    self._collect(f["type"])
            elif t == "array":
                self._collect(s["items"])
            elif t == "map":
                self._collect(s["values"])
            elif isinstance(t, dict | list):
                self._collect(t)

    def var(self, prefix: str = "v") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, value: Any, prefix: str = "K") -> str:
        name = self.var(prefix)
        self.consts[name] = value
        return name

    def resolve(self, s: Any) -> Any:
        if isinstance(s, str):
            if s in _PRIMITIVE_MIN_SIZE:
                return s
            if s in self.named:
                return self.named[s]
            raise Unsupported(f"unknown type {s!r}")
        if isinstance(s, dict) and isinstance(s.get("type"), str) and len(s) == 1:
            return self.resolve(s["type"])
        return s

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def min_size(self, s: Any) -> int:
        s = self.resolve(s)
        if isinstance(s, str):
            return _PRIMITIVE_MIN_SIZE[s]
        if isinstance(s, list):
            return 1
        t = s["type"]
        if t == "fixed":
            return int(s["size"])
        if t in ("record", "error"):
            if s["name"] in self.stack:
                return 0
            return sum(self.min_size(f["type"]) for f in s["fields"])
        if t in ("enum", "array", "map"):
            return 1
        if t in _PRIMITIVE_MIN_SIZE:
            return _PRIMITIVE_MIN_SIZE[t]
        return 0


def _kind(s: Any) -> tuple[str, Any]:
    """(type keyword, schema) with the logical type folded in, e.g. 'timestamp-micros'."""
    if isinstance(s, str):
        return s, s
    if isinstance(s, list):
        return "union", s
    t = s["type"]
    lt = s.get("logicalType")
    if lt is not None:
        if t == "long" and lt in ("timestamp-micros", "timestamp-millis"):
            return lt, s
        raise Unsupported(f"logical type {lt!r} on {t!r}")
    if isinstance(t, dict | list):
        return _kind(t)
    return t, s


class _EncoderGen(_Gen):
    """Emits the checks of each value as statements and returns its bytes as expressions, so a
    record ends in one ``b''.join((...))`` of a tuple (a list and one ``append`` call per field
    cost a quarter more)."""

    def value(self, s: Any, v: str, path: str, ind: int) -> list[str]:
        """Emit the checks of variable ``v`` (schema ``s``); return expressions of its bytes."""
        kind, s = _kind(self.resolve(s))
        p = repr(path)
        e = self.emit
        if kind == "null":
            e(ind, f"if {v} is not None: raise _bad({p}, {v}, 'null')")
            return []
        if kind == "boolean":
            b = self.var("b")
            e(ind, f"if {v} is True: {b} = b'\\x01'")
            e(ind, f"elif {v} is False: {b} = b'\\x00'")
            e(ind, f"else: raise _bad({p}, {v}, 'boolean')")
            return [b]
        if kind in ("int", "long"):
            lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            e(ind, f"if {v}.__class__ is not int or not {lo} <= {v} <= {hi}:")
            e(ind + 1, f"{v} = chk_int({v}, {p}, {lo}, {hi}, {kind!r})")
            return [f"(ZZ[{v} + 64] if -64 <= {v} < 64 else enc_long({v}))"]
        if kind in ("float", "double"):
            pack = "_pack_f" if kind == "float" else "_pack_d"
            e(ind, f"if {v}.__class__ is not float: {v} = chk_float({v}, {p}, {kind!r})")
            return [f"{pack}({v})"]
        if kind == "string":
            b = self.var("b")
            e(ind, f"{b} = SC.get({v}) if {v}.__class__ is str else None")
            e(ind, f"if {b} is None: {b} = enc_str({v}, {p})")
            return [b]
        if kind == "bytes":
            e(ind, f"if {v}.__class__ is not bytes: {v} = chk_bytes({v}, {p})")
            return [f"enc_long(len({v}))", v]
        if kind in ("timestamp-micros", "timestamp-millis"):
            cache, fn = (
                ("TCU", "enc_ts_micros") if kind == "timestamp-micros" else ("TCM", "enc_ts_millis")
            )
            b = self.var("b")
            e(ind, f"{b} = {cache}.get({v}) if {v}.__class__ is DT else None")
            e(ind, f"if {b} is None: {b} = {fn}({v}, {p})")
            return [b]
        if kind == "enum":
            table = self.const({sym: enc_long(i) for i, sym in enumerate(s["symbols"])}, "E")
            b = self.var("b")
            e(ind, f"{b} = {table}.get({v})")
            e(ind, f"if {b} is None: raise _bad({p}, {v}, {'enum ' + s['name']!r})")
            return [b]
        if kind == "fixed":
            e(ind, f"if {v}.__class__ is not bytes: {v} = chk_bytes({v}, {p})")
            e(ind, f"if len({v}) != {int(s['size'])}: raise _bad({p}, {v}, 'fixed {s['name']}')")
            return [v]
        if kind in ("array", "map"):
            b, q, x = self.var("b"), self.var("q"), self.var("x")
            if kind == "array":
                e(ind, f"if {v}.__class__ is not list: {v} = chk_seq({v}, {p})")
            else:
                e(ind, f"if {v}.__class__ is not dict: {v} = chk_record({v}, {p})")
            e(ind, f"if {v}:")
            e(ind + 1, f"{q} = [enc_long(len({v}))]")
            if kind == "array":
                e(ind + 1, f"for {x} in {v}:")
                parts = self.value(s["items"], x, path + "[]", ind + 2)
            else:
                k = self.var("k")
                e(ind + 1, f"for {k}, {x} in {v}.items():")
                parts = self.value("string", k, path + "{}", ind + 2)
                parts += self.value(s["values"], x, path + "{}", ind + 2)
            if parts:
                e(ind + 2, f"{q}.append({self.joined(parts)})")
            e(ind + 1, f"{q}.append(b'\\x00')")
            e(ind + 1, f"{b} = b''.join({q})")
            e(ind, f"else: {b} = b'\\x00'")
            return [b]
        if kind == "union":
            branches = [_kind(self.resolve(b))[0] for b in s]
            if len(s) != 2 or "null" not in branches:
                raise Unsupported("only unions of null and one type are generated")
            ni = branches.index("null")
            b = self.var("b")
            e(ind, f"if {v} is None: {b} = {enc_long(ni)!r}")
            e(ind, "else:")
            parts = self.value(s[1 - ni], v, path, ind + 1)
            e(ind + 1, f"{b} = {self.joined([repr(enc_long(1 - ni)), *parts])}")
            return [b]
        if kind in ("record", "error"):
            name = s["name"]
            if name in self.stack:
                raise Unsupported(f"recursive record {name}")
            self.stack.append(name)
            e(ind, f"if {v}.__class__ is not dict: {v} = chk_record({v}, {p})")
            out: list[str] = []
            for f in s["fields"]:
                fv = self.var("f")
                fpath = f"{path}.{f['name']}" if path else f["name"]
                if "default" in f:
                    d = self.const(f["default"], "D")
                    e(ind, f"{fv} = {v}.get({f['name']!r}, {d})")
                elif isinstance(f["type"], list) and "null" in f["type"]:
                    e(ind, f"{fv} = {v}.get({f['name']!r})")  # missing means null, as fastavro
                else:
                    e(ind, f"{fv} = {v}[{f['name']!r}]")
                out += self.value(f["type"], fv, fpath, ind)
            self.stack.pop()
            return out
        raise Unsupported(f"type {kind!r}")

    @staticmethod
    def joined(parts: list[str]) -> str:
        """One bytes expression of ``parts``."""
        if not parts:
            return "b''"
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            return f"{parts[0]} + {parts[1]}"
        return f"b''.join(({', '.join(parts)},))"


class _DecoderGen(_Gen):
    def value(self, s: Any, v: str, ind: int) -> None:
        """Emit code that reads one value of schema ``s`` at ``pos`` into variable ``v``."""
        kind, s = _kind(self.resolve(s))
        e = self.emit
        if kind == "null":
            e(ind, f"{v} = None")
        elif kind == "boolean":
            e(ind, f"{v} = d[pos]; pos += 1")
            e(ind, f"if {v} > 1: raise Corrupt(f'boolean byte {{{v}}} at {{pos - 1}}')")
            e(ind, f"{v} = {v} == 1")
        elif kind in ("int", "long"):
            e(ind, f"{v} = d[pos]")
            e(ind, f"if {v} < 128: {v} = ({v} >> 1) ^ -({v} & 1); pos += 1")
            e(ind, "elif d[pos + 1] < 128:")  # two bytes: prices, counts
            e(ind + 1, f"{v} = ({v} & 127) | (d[pos + 1] << 7); {v} = ({v} >> 1) ^ -({v} & 1)")
            e(ind + 1, "pos += 2")
            e(ind, f"else: {v}, pos = read_long(d, pos)")
        elif kind in ("float", "double"):
            fn, size = ("_unpack_f", 4) if kind == "float" else ("_unpack_d", 8)
            e(ind, f"{v} = {fn}(d, pos)[0]; pos += {size}")
        elif kind in ("string", "bytes"):
            n = self.var("n")
            e(ind, f"{n} = d[pos]")
            e(ind, f"if {n} < 128 and not {n} & 1: {n} >>= 1; pos += 1")
            e(ind, f"else: {n}, pos = read_len(d, pos)")
            e(ind, f"{v} = d[pos:pos + {n}]; pos += {n}")
            if kind == "string":
                e(ind, f"{v} = {v}.decode()")
        elif kind in ("timestamp-micros", "timestamp-millis"):
            cache, scale = ("TDU", 1) if kind == "timestamp-micros" else ("TDM", 1000)
            e(ind, f"{v} = {cache}.get(d[pos:pos + 8])")
            e(ind, f"if {v} is not None: pos += 8")
            e(ind, f"else: {v}, pos = read_ts(d, pos, {scale})")
        elif kind == "enum":
            syms = list(s["symbols"])
            if len(syms) <= 64:
                table = [None] * 256
                for i, sym in enumerate(syms):
                    table[i << 1] = sym
                t = self.const(tuple(table), "E")
                e(ind, f"{v} = {t}[d[pos]]; pos += 1")
                e(ind, f"if {v} is None: raise Corrupt(f'bad enum index at {{pos - 1}}')")
            else:
                t = self.const(tuple(syms), "E")
                e(ind, f"{v}, pos = read_long(d, pos)")
                e(ind, f"if not 0 <= {v} < {len(syms)}: raise Corrupt(f'bad enum index {{{v}}}')")
                e(ind, f"{v} = {t}[{v}]")
        elif kind == "fixed":
            size = int(s["size"])
            e(ind, f"{v} = d[pos:pos + {size}]; pos += {size}")
            e(ind, f"if len({v}) != {size}: raise Truncated('fixed runs past the end')")
        elif kind in ("array", "map"):
            c, i, x = self.var("c"), self.var("i"), self.var("x")
            item = s["items"] if kind == "array" else s["values"]
            min_item = self.min_size(item) + (1 if kind == "map" else 0)
            e(ind, f"{v} = {'[]' if kind == 'array' else '{}'}")
            e(ind, "while True:")
            e(ind + 1, f"{c}, pos = read_count(d, pos, {min_item})")
            e(ind + 1, f"if not {c}: break")
            e(ind + 1, f"for {i} in range({c}):")
            if kind == "map":
                k = self.var("k")
                self.value("string", k, ind + 2)
                self.value(item, x, ind + 2)
                e(ind + 2, f"{v}[{k}] = {x}")
            else:
                self.value(item, x, ind + 2)
                e(ind + 2, f"{v}.append({x})")
        elif kind == "union":
            branches = [_kind(self.resolve(b))[0] for b in s]
            if len(s) != 2 or "null" not in branches:
                raise Unsupported("only unions of null and one type are generated")
            ni = branches.index("null")
            b = self.var("u")
            e(ind, f"{b} = d[pos]; pos += 1")
            e(ind, f"if {b} == {ni << 1}: {v} = None")
            e(ind, f"elif {b} == {(1 - ni) << 1}:")
            self.value(s[1 - ni], v, ind + 1)
            e(ind, f"else: raise Corrupt(f'bad union index byte {{{b}}} at {{pos - 1}}')")
        elif kind in ("record", "error"):
            name = s["name"]
            if name in self.stack:
                raise Unsupported(f"recursive record {name}")
            self.stack.append(name)
            names = []
            for f in s["fields"]:
                fv = self.var("f")
                self.value(f["type"], fv, ind)
                names.append(f"{f['name']!r}: {fv}")
            e(ind, f"{v} = {{{', '.join(names)}}}")
            self.stack.pop()
        else:
            raise Unsupported(f"type {kind!r}")


_ENC_GLOBALS: dict[str, Any] = {
    "_bad": _bad,
    "chk_int": chk_int,
    "chk_float": chk_float,
    "chk_bytes": chk_bytes,
    "chk_record": chk_record,
    "chk_seq": chk_seq,
    "enc_long": enc_long,
    "enc_str": enc_str,
    "enc_ts_micros": enc_ts_micros,
    "enc_ts_millis": enc_ts_millis,
    "_pack_d": _pack_d,
    "_pack_f": _pack_f,
    "ZZ": tuple(enc_long(i) for i in range(-64, 64)),
    "SC": _STR_CACHE,
    "TCU": _TS_CACHE_MICROS,
    "TCM": _TS_CACHE_MILLIS,
    "DT": dt.datetime,
}

_DEC_GLOBALS: dict[str, Any] = {
    "read_long": read_long,
    "read_len": read_len,
    "read_count": read_count,
    "read_ts": read_ts,
    "_unpack_d": _unpack_d,
    "_unpack_f": _unpack_f,
    "TDU": _TS_DEC_MICROS,
    "TDM": _TS_DEC_MILLIS,
    "Corrupt": Corrupt,
    "Truncated": Truncated,
}


def _build(gen: _Gen, fname: str, glb: dict[str, Any]) -> Callable[..., Any]:
    source = "\n".join(gen.lines)
    namespace: dict[str, Any] = {**glb, **gen.consts}
    exec(compile(source, f"<{fname}>", "exec"), namespace)
    fn = namespace[fname]
    fn.__source__ = source  # for debugging: print(fn.__source__)
    return fn


def compile_encoder(schema: Any, prefix: bytes = b"") -> Callable[[Any], bytes]:
    """``encode(record) -> prefix + Avro binary`` for a parsed schema."""
    gen = _EncoderGen(schema)
    gen.emit(0, "def encode(r):")
    parts = gen.value(schema, "r", "", 1)
    gen.emit(1, f"return {gen.joined([repr(prefix), *parts])}")
    return _build(gen, "encode", _ENC_GLOBALS)


def compile_fields_encoder(
    schema: Any, names: tuple[str, ...], prefix: bytes = b""
) -> Callable[..., bytes]:
    """``encode(*values) -> prefix + Avro binary of the fields`` for a run of a record's fields.

    Why: a record's Avro binary is the concatenation of its fields' encodings, so the encodings of
    consecutive runs of fields, joined in field order, are the record's. A stream whose records
    share most fields (every line of one book in one payload has the same game, teams, book and
    fetch time) encodes the shared runs once and only the varying run per record; the values are
    positional, so no dict is built either. Same checks and errors as :func:`compile_encoder`.
    """
    gen = _EncoderGen(schema)
    fields = {f["name"]: f for f in schema["fields"]}
    args = [gen.var("a") for _ in names]
    gen.emit(0, f"def encode({', '.join(args)}):")
    parts = [repr(prefix)] if prefix else []
    for arg, name in zip(args, names, strict=True):
        if name not in fields:
            raise KeyError(f"{schema['name']} has no field {name!r}")
        parts += gen.value(fields[name]["type"], arg, name, 1)
    gen.emit(1, f"return {gen.joined(parts)}")
    return _build(gen, "encode", _ENC_GLOBALS)


def compile_decoder(schema: Any) -> Callable[[bytes, int], tuple[Any, int]]:
    """``decode(data, pos) -> (value, end position)`` for a parsed schema."""
    gen = _DecoderGen(schema)
    gen.emit(0, "def decode(d, pos):")
    gen.value(schema, "r", 1)
    gen.emit(1, "return r, pos")
    return _build(gen, "decode", _DEC_GLOBALS)
