"""Topic → table mappings, derived from the topic catalog and each topic's Avro schema.

Like a Kafka Connect sink config, but checked: every Avro field must have a column of the same
name in the target table, and every row also carries its lineage (topic, partition, offset).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.settings import Settings
from core.topics import TopicSpec, topic_name
from schemas.registry import default_registry

LINEAGE = ("kafka_topic", "kafka_partition", "kafka_offset")


def _json(value: Any) -> Any:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _is_structured(avro_type: Any) -> bool:
    """Avro maps and records are stored as jsonb."""
    if isinstance(avro_type, list):
        return any(_is_structured(t) for t in avro_type)
    if isinstance(avro_type, dict):
        return avro_type.get("type") in ("map", "record")
    return False


@dataclass(frozen=True)
class TableMapping:
    topic: str  # physical topic name
    spec: TopicSpec
    qualified_table: str  # schema.table
    fields: tuple[str, ...]  # Avro field names, in order
    converters: tuple[Callable[[Any], Any] | None, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.fields, *LINEAGE)

    def row(self, record: dict[str, Any], topic: str, partition: int, offset: int) -> tuple:
        values = [
            conv(record[f]) if conv else record[f]
            for f, conv in zip(self.fields, self.converters, strict=True)
        ]
        values.extend((topic, partition, offset))
        return tuple(values)

    def row_maker(self) -> Callable[[dict[str, Any], str, int, int], tuple]:
        """A fast ``row``: one C-level itemgetter per record when no field needs converting.

        The sink calls this once per record, so per-row Python work is what bounds throughput.
        """
        if any(self.converters) or len(self.fields) < 2:
            return self.row
        get = operator.itemgetter(*self.fields)

        def row(record: dict[str, Any], topic: str, partition: int, offset: int) -> tuple:
            return (*get(record), topic, partition, offset)

        return row

    def key_index(self) -> tuple[int, ...]:
        """Positions of the natural-key columns in a row."""
        return tuple(self.columns.index(k) for k in self.spec.key_columns)


def mapping_for(settings: Settings, spec: TopicSpec) -> TableMapping:
    schema = default_registry().get(spec.schema).raw
    fields = tuple(f["name"] for f in schema["fields"])
    converters = tuple(_json if _is_structured(f["type"]) else None for f in schema["fields"])
    return TableMapping(
        topic=topic_name(settings, spec.name),
        spec=spec,
        qualified_table=f"{spec.schema_name(settings)}.{spec.table}",
        fields=fields,
        converters=converters,
    )
