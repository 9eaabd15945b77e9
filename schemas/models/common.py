"""Shared pieces of the typed models: the base class, the Avro-exact field types and the enums.

Why exact types: a model must accept exactly the records its Avro schema accepts, so the fields
are strict (no "5" -> 5, no True -> 1), ints are range-checked to Avro int/long, strings must be
encodable as UTF-8, and timestamps are aware UTC datetimes (ints are microseconds, as in Avro).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Market(StrEnum):
    """oddsflow.staging.Market."""

    MONEYLINE = "moneyline"
    SPREAD = "spread"
    TOTAL = "total"


class Side(StrEnum):
    """oddsflow.staging.Side: home/away for moneyline and spread, over/under for total."""

    HOME = "home"
    AWAY = "away"
    OVER = "over"
    UNDER = "under"


class MoveUnit(StrEnum):
    """oddsflow.curated.MoveUnit: cents (moneyline, continuous scale) or points."""

    CENTS = "cents"
    POINTS = "points"


class SignalType(StrEnum):
    """oddsflow.curated.SignalType."""

    REVERSE_LINE_MOVEMENT = "reverse_line_movement"
    SHARP_ACTION = "sharp_action"


def _utf8(value: str) -> str:
    value.encode()  # lone surrogates cannot be written as Avro strings
    return value


def _timestamp(value: Any) -> Any:
    """Avro timestamp-micros semantics: ints are microseconds, naive datetimes are UTC."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        if not LONG_MIN <= value <= LONG_MAX:
            raise ValueError("timestamp out of the Avro long range")
        try:
            return EPOCH + dt.timedelta(microseconds=value)
        except OverflowError:
            raise ValueError("timestamp out of the datetime range") from None
    raise ValueError(
        f"timestamp must be a datetime or int microseconds, not {type(value).__name__}"
    )


def _enum(cls: type[StrEnum]) -> PlainValidator:
    def check(value: Any) -> StrEnum:
        if isinstance(value, str):  # members are str too
            return cls(value)
        raise ValueError(f"{cls.__name__} must be one of {[m.value for m in cls]}")

    return PlainValidator(check)


AvroStr = Annotated[str, AfterValidator(_utf8)]
AvroInt = Annotated[int, Field(ge=INT_MIN, le=INT_MAX)]
AvroLong = Annotated[int, Field(ge=LONG_MIN, le=LONG_MAX)]
Timestamp = Annotated[dt.datetime, BeforeValidator(_timestamp)]
MarketField = Annotated[Market, _enum(Market)]
SideField = Annotated[Side, _enum(Side)]
MoveUnitField = Annotated[MoveUnit, _enum(MoveUnit)]
SignalTypeField = Annotated[SignalType, _enum(SignalType)]


class AvroModel(BaseModel):
    """A typed record of one Avro schema; ``avro_name`` is the schema's full name."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    avro_name: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The record as the codec encodes it (enums as their str values, UTC datetimes)."""
        return self.model_dump(mode="python")

    @classmethod
    def from_avro(cls, record: Mapping[str, Any]) -> Self:
        """Validate a decoded (or hand-built) record into the model."""
        return cls.model_validate(record)

    @classmethod
    def schema_name(cls) -> str:
        """The Avro full name, for ``Codec.encoder(Model.schema_name())``."""
        return cls.avro_name
