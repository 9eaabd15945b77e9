"""The topic catalog: every topic of the pipeline, its zone, schema, key and retention.

One module so that producers, agents, sinks, ``oddsflow topics create`` and ``oddsflow topology``
all read the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.settings import Settings

RAW_SOURCES = ("simulator", "odds_api", "sbd", "action_network", "file")
#: Sources that replay a history (files) or run their own timeline (the simulator): their record
#: timestamps may lie months or years back, so their topics are kept by size, not time.
HISTORY_SOURCES = ("file", "simulator")
#: ``collect``: what the collectors received and refused (producers/refusals.py).
DLQ_STAGES = ("staging", "features", "sink", "collect")
DAY_MS = 24 * 3600 * 1000


class Zone(StrEnum):
    RAW = "raw"
    STAGING = "staging"
    CURATED = "curated"
    OPERATIONAL = "operational"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    zone: Zone
    schema: str  # full Avro name in schemas/avro
    key: str  # what the Kafka key is
    table: str  # Postgres table in the zone's schema the sink writes it to
    key_columns: tuple[str, ...]  # natural key of a row: replays insert nothing twice
    upsert: bool = False  # latest state per key (games) instead of insert-once
    compact: bool = False
    #: Results a late record may correct (the same key re-sent) or withdraw (``retracted``): the
    #: sink inserts them, takes a correction as an update and deletes a withdrawn row.
    corrected: bool = False

    def retention_ms(self, settings: Settings) -> int:
        """The topic's retention.ms from the zone's retention days (-1 keeps forever).

        The raw topics of HISTORY_SOURCES have none: their records carry the time of the history
        they replay (a 2016 season says 2016), and the broker's time retention would delete them
        at its next check; they are kept by size (``history_retention_bytes``, core.admin).
        """
        if self.replays_history:
            return -1
        r = settings.pipeline.retention
        days = {
            Zone.RAW: r.raw_retention_days,
            Zone.STAGING: r.staging_retention_days,
            Zone.CURATED: r.curated_retention_days,
            Zone.OPERATIONAL: r.staging_retention_days,
        }[self.zone]
        return -1 if days < 0 else days * DAY_MS

    @property
    def replays_history(self) -> bool:
        """A raw topic whose records are stamped with a history's times, not the present's."""
        return self.name in {raw_topic(s) for s in HISTORY_SOURCES}

    def schema_name(self, settings: Settings) -> str:
        """Postgres schema of this topic's zone."""
        return getattr(settings.pipeline.zones, self.zone.value)


def topic_name(settings: Settings, logical: str) -> str:
    """The physical topic name: the catalog name behind the configured prefix."""
    return settings.kafka.topic_prefix + logical


def raw_topic(source: str) -> str:
    return f"raw.odds.{source}"


def dlq_topic(stage: str) -> str:
    return f"dlq.{stage}"


_LINE_KEY = ("game_id", "book", "market", "side", "event_time")
_DLQ_KEY = ("stage", "origin_topic", "origin_partition", "origin_offset", "error_class", "reason")

CATALOG: tuple[TopicSpec, ...] = (
    *(
        TopicSpec(
            raw_topic(s),
            Zone.RAW,
            "oddsflow.raw.RawEnvelope",
            "source event id",
            "odds_envelopes",
            ("source", "event_id"),
        )
        for s in RAW_SOURCES
    ),
    TopicSpec(
        "staging.odds_lines",
        Zone.STAGING,
        "oddsflow.staging.OddsLine",
        "game id",
        "odds_lines",
        _LINE_KEY,
    ),
    TopicSpec(
        "staging.betting_splits",
        Zone.STAGING,
        "oddsflow.staging.BettingSplit",
        "game id",
        "betting_splits",
        ("game_id", "source", "book", "market", "side", "event_time"),
    ),
    TopicSpec(
        "staging.games",
        Zone.STAGING,
        "oddsflow.staging.Game",
        "game id",
        "games",
        ("game_id",),
        upsert=True,
        compact=True,
    ),
    TopicSpec(
        "curated.line_velocity",
        Zone.CURATED,
        "oddsflow.curated.LineVelocity",
        "game id",
        "line_velocity",
        ("game_id", "market", "side", "book", "window_minutes", "event_time"),
        corrected=True,
    ),
    TopicSpec(
        "curated.steam_moves",
        Zone.CURATED,
        "oddsflow.curated.SteamMove",
        "game id",
        "steam_moves",
        ("move_id",),
        corrected=True,
    ),
    TopicSpec(
        "curated.sharp_signals",
        Zone.CURATED,
        "oddsflow.curated.SharpSignal",
        "game id",
        "sharp_signals",
        ("signal_id",),
        corrected=True,
    ),
    TopicSpec(
        "curated.consensus",
        Zone.CURATED,
        "oddsflow.curated.Consensus",
        "game id",
        "consensus",
        ("game_id", "market", "side", "event_time"),
        corrected=True,
    ),
    TopicSpec(
        "curated.feature_vectors",
        Zone.CURATED,
        "oddsflow.curated.FeatureVector",
        "game id",
        "feature_vectors",
        ("game_id", "market", "feature_set_version", "event_time"),
        upsert=True,
        corrected=True,
    ),
    TopicSpec(
        "operational.quality",
        Zone.OPERATIONAL,
        "oddsflow.operational.QualityReport",
        "source",
        "quality",
        ("source", "stage", "window_start"),
        upsert=True,
    ),
    TopicSpec(
        "operational.pipeline_events",
        Zone.OPERATIONAL,
        "oddsflow.operational.PipelineEvent",
        "stage",
        "pipeline_events",
        ("event_id",),
    ),
    *(
        TopicSpec(
            dlq_topic(s),
            Zone.OPERATIONAL,
            "oddsflow.operational.DeadLetter",
            "origin key",
            "dead_letters",
            _DLQ_KEY,
        )
        for s in DLQ_STAGES
    ),
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in CATALOG}


def spec(name: str) -> TopicSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the topic catalog") from None


#: Header on every raw record (written by producers/publisher.py, read by staging): when the
#: collector handed it to Kafka (ms since the epoch, as text). The record timestamp is the
#: observation's time; the quality gate judges the delay from observation to publication
#: (streams/staging/quality.py), and a replay of the topic keeps the original publication time.
PUBLISHED_HEADER = "oddsflow-published-ms"
