"""Models and Avro schemas accept and reject the same records, for every schema.

Records come from two sides: strategies derived from the ``.avsc`` (valid, then mutated into
invalid ones) and strategies derived from the pydantic models. Every accepted record round-trips
through the codec and through plain fastavro, and the generated encoder writes the same bytes
as fastavro.
"""

from __future__ import annotations

import datetime as dt
import io
import types
import typing
from enum import StrEnum
from itertools import pairwise
from typing import Any

import fastavro
import pytest
from annotated_types import Ge, Le
from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from schemas.codec import HEADER_LEN, DecodeError, EncodeError, default_codec
from schemas.models import MODELS, AvroModel
from schemas.registry import default_registry

UTC = dt.UTC
REGISTRY = default_registry()
CODEC = default_codec()
NAMES = sorted(REGISTRY.current)
MIN_MICROS = -62135596800000000  # 0001-01-01
MAX_MICROS = 253402300799999999  # 9999-12-31T23:59:59.999999
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
timestamps = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),  # naive = UTC, as in Avro
    st.integers(MIN_MICROS, MAX_MICROS),
)
doubles = st.one_of(st.floats(allow_nan=False), st.integers(-(2**53), 2**53))


# --- strategies from the Avro schema ---------------------------------------------------------


def _named(schema: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, list):
        for s in schema:
            _named(s, out)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            out[schema["name"]] = schema
        for f in schema.get("fields", []):
            _named(f["type"], out)
        for key in ("items", "values"):
            if key in schema:
                _named(schema[key], out)
        if isinstance(schema.get("type"), dict | list):
            _named(schema["type"], out)
    return out


def from_avro(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid values of an Avro type."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        return st.one_of(*(from_avro(s, named) for s in schema))
    if isinstance(schema, dict):
        t = schema["type"]
        if schema.get("logicalType") == "timestamp-micros":
            return timestamps
        if isinstance(t, dict | list):
            return from_avro(t, named)
        if t == "record":
            required, optional = {}, {}
            for f in schema["fields"]:
                target = optional if "default" in f else required
                target[f["name"]] = from_avro(f["type"], named)
            return st.fixed_dictionaries(required, optional=optional)
        if t == "enum":
            return st.sampled_from(schema["symbols"])
        if t == "array":
            return st.lists(from_avro(schema["items"], named), max_size=4)
        if t == "map":
            return st.dictionaries(text, from_avro(schema["values"], named), max_size=4)
        schema = t
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "double": doubles,
        "string": text,
        "bytes": st.binary(max_size=12),
    }[schema]


BAD_VALUES = [
    None,
    "x",
    b"x",
    1.5,
    True,
    2**31,
    2**63,
    -(2**40),
    [],
    {},
    ["x", 1],
    {"k": 1},
    "not_a_symbol",
    "bad\ud800",
    MAX_MICROS + 1,
]


@st.composite
def mutated(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A valid record with one field replaced by a (usually) wrong value, or removed."""
    raw = REGISTRY.get(name).raw
    record = dict(draw(from_avro(raw, _named(raw, {}))))
    field = draw(st.sampled_from([f["name"] for f in raw["fields"]]))
    if draw(st.booleans()) and field in record:
        del record[field]
    else:
        record[field] = draw(st.sampled_from(BAD_VALUES))
    return record


# --- strategies from the models --------------------------------------------------------------


def from_annotation(tp: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Valid values of a model field, from its type hints (not from the .avsc)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(tp)
        flat = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return from_annotation(base, [*metadata, *flat])
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(from_annotation(a, metadata) for a in typing.get_args(tp)))
    if origin is list:
        return st.lists(from_annotation(typing.get_args(tp)[0], []), max_size=4)
    if origin is dict:
        k, v = typing.get_args(tp)
        return st.dictionaries(from_annotation(k, []), from_annotation(v, []), max_size=4)
    if tp is type(None):
        return st.none()
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return st.sampled_from(list(tp))
    if tp is bool:
        return st.booleans()
    if tp is int:
        lo = next((m.ge for m in metadata if isinstance(m, Ge)), None)
        hi = next((m.le for m in metadata if isinstance(m, Le)), None)
        return st.integers(lo, hi)
    if tp is float:
        return doubles
    if tp is str:
        return text
    if tp is bytes:
        return st.binary(max_size=12)
    if tp is dt.datetime:
        return timestamps
    raise AssertionError(f"no strategy for {tp!r}")


def from_model(model: type[AvroModel]) -> st.SearchStrategy[dict[str, Any]]:
    hints = typing.get_type_hints(model, include_extras=True)
    return st.fixed_dictionaries(
        {n: from_annotation(hints[n], list(f.metadata)) for n, f in model.model_fields.items()}
    )


# --- the checks ------------------------------------------------------------------------------


def schema_accepts(name: str, record: Any) -> bool:
    """The schema side: the codec encodes it and decodes it back (and fastavro agrees)."""
    try:
        data = CODEC.encode(name, record)
        CODEC.decode(data, reader=name)
    except (EncodeError, DecodeError):
        return False
    assert validate(record, REGISTRY.get(name).parsed, raise_errors=False), record
    return True


def model_accepts(name: str, record: Any) -> bool:
    try:
        MODELS[name].from_avro(record)
    except ValidationError:
        return False
    return True


def check_round_trip(name: str, record: dict[str, Any]) -> None:
    """Codec, fastavro and model agree on an accepted record."""
    model = MODELS[name]
    sv = REGISTRY.get(name)
    expected = model.from_avro(record)
    data = CODEC.encode(name, record)
    assert data[:HEADER_LEN] == b"\xc3\x01" + sv.fingerprint
    # the generated encoder writes exactly what fastavro writes
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, sv.parsed, record)
    assert data[HEADER_LEN:] == buf.getvalue()
    decoded = CODEC.decode(data, reader=name)
    assert decoded == fastavro.schemaless_reader(io.BytesIO(data[HEADER_LEN:]), sv.parsed)
    assert model.from_avro(decoded) == expected
    # model -> avro -> bytes -> model
    again = CODEC.encode(name, expected.to_avro())
    assert again == CODEC.encode(name, decoded)
    assert model.from_avro(CODEC.decode(again, reader=name)) == expected


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_has_a_model_with_the_same_fields(name: str) -> None:
    model = MODELS[name]
    assert model.avro_name == name == model.schema_name()
    assert list(model.model_fields) == [f["name"] for f in REGISTRY.get(name).raw["fields"]]


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_schema_generated_records_are_accepted_by_both(name: str, data: st.DataObject) -> None:
    raw = REGISTRY.get(name).raw
    record = data.draw(from_avro(raw, _named(raw, {})))
    assert schema_accepts(name, record)
    assert model_accepts(name, record)
    check_round_trip(name, record)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_model_generated_records_are_accepted_by_both(name: str, data: st.DataObject) -> None:
    record = data.draw(from_model(MODELS[name]))
    assert model_accepts(name, record)
    assert schema_accepts(name, record)
    check_round_trip(name, record)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_records_are_rejected_or_accepted_by_both(name: str, data: st.DataObject) -> None:
    record = data.draw(mutated(name))
    accepted = schema_accepts(name, record)
    assert model_accepts(name, record) == accepted, record
    if accepted:
        check_round_trip(name, record)


@pytest.mark.parametrize("name", NAMES)
def test_non_records_are_rejected_by_both(name: str) -> None:
    for value in (None, [], "record", 3):
        assert schema_accepts(name, value) is False
        assert model_accepts(name, value) is False


def test_models_enums_are_the_schema_enums() -> None:
    from schemas.models import Market, MoveUnit, Side, SignalType

    line_velocity = REGISTRY.get("oddsflow.curated.LineVelocity").raw
    fields = {f["name"]: f["type"] for f in line_velocity["fields"]}
    assert [m.value for m in Market] == fields["market"]["symbols"]
    assert [s.value for s in Side] == fields["side"]["symbols"]
    assert [u.value for u in MoveUnit] == fields["unit"]["symbols"]
    signal = REGISTRY.get("oddsflow.curated.SharpSignal").raw
    stype = next(f["type"] for f in signal["fields"] if f["name"] == "signal_type")
    assert [s.value for s in SignalType] == stype["symbols"]


def test_timestamp_ints_are_microseconds_in_model_and_codec() -> None:
    from schemas.models import PipelineEvent

    micros = 1_712_163_900_123_456
    record = {"event_id": "e1", "stage": "staging", "kind": "started", "at": micros, "worker": "w"}
    decoded = CODEC.decode(CODEC.encode(PipelineEvent.avro_name, record))
    expected = dt.datetime(2024, 4, 3, 17, 5, 0, 123456, tzinfo=UTC)
    assert decoded["at"] == expected
    assert decoded["details"] == {}
    assert PipelineEvent.from_avro(record).at == expected
    assert PipelineEvent.from_avro(decoded).to_avro()["at"] == expected


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_run_encoders_joined_write_the_whole_record(name: str, data: st.DataObject) -> None:
    """Positional encoders of consecutive runs of fields, joined, write the record's bytes."""
    raw = REGISTRY.get(name).raw
    record = data.draw(from_avro(raw, _named(raw, {})))
    fields = raw["fields"]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(fields) - 1), max_size=4)))
    bounds = [0, *cuts, len(fields)]
    runs = tuple(tuple(f["name"] for f in fields[a:b]) for a, b in pairwise(bounds))
    encoders = CODEC.run_encoders(name, runs)
    values = {f["name"]: record.get(f["name"], f.get("default")) for f in fields}
    joined = b"".join(
        enc(*(values[n] for n in run)) for enc, run in zip(encoders, runs, strict=True)
    )
    assert joined == CODEC.encode(name, record)


def test_run_encoders_must_cover_the_fields_in_order() -> None:
    names = [f["name"] for f in REGISTRY.get("oddsflow.staging.Game").raw["fields"]]
    with pytest.raises(ValueError, match="do not cover"):
        CODEC.run_encoders("oddsflow.staging.Game", (tuple(names[1:]), (names[0],)))
    with pytest.raises(EncodeError, match="commence_time"):  # the first field "x" does not fit
        (enc,) = CODEC.run_encoders("oddsflow.staging.Game", (tuple(names),))
        enc(*["x"] * len(names))
