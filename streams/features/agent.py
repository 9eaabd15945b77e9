"""The curated feature agent (faust): a thin adapter around the pure FeatureEngine.

Input: staging.odds_lines, staging.betting_splits and staging.games, all keyed by game id, so one
game's records share a partition number and the engine's per-game state is local. That state
lives in a changelogged table (one entry per game, written after each record of the game), so a
restarted worker resumes where the last one stopped.
"""

from __future__ import annotations

import logging
from collections import Counter

import faust

from oddsflow.settings import Settings
from oddsflow.topics import spec, topic_name
from schemas.codec import default_codec
from streams.features.engine import FeatureEngine

log = logging.getLogger("oddsflow.features")

INPUTS = ("staging.odds_lines", "staging.betting_splits", "staging.games")
OUTPUTS = (
    "curated.line_velocity",
    "curated.steam_moves",
    "curated.sharp_signals",
    "curated.consensus",
    "curated.feature_vectors",
)


def register(app: faust.App, settings: Settings) -> Counter[str]:
    """Add the feature agent to ``app``; returns its live output counters."""
    codec = default_codec()
    inputs = app.topic(*(topic_name(settings, t) for t in INPUTS))
    outputs = {t: app.topic(topic_name(settings, t)) for t in OUTPUTS}
    encoders = {t: codec.encoder(spec(t).schema) for t in OUTPUTS}
    names = {codec.registry.get(spec(t).schema).fingerprint: t for t in INPUTS}
    state = app.Table("features-state", partitions=settings.kafka.partitions)
    engine = FeatureEngine(settings.features)
    counters: Counter[str] = Counter()
    restored: set[str] = set()

    @app.agent(inputs, name="features")
    async def features(stream: faust.StreamT) -> None:
        async for event in stream.events():
            value: bytes = event.value
            kind = names.get(bytes(value[2:10]))
            record = codec.decode(value)
            game_id = record["game_id"]
            if game_id not in restored:
                saved = state.get(game_id)
                if saved is not None and game_id not in engine.game_ids():
                    engine.restore(game_id, saved)
                restored.add(game_id)
            if kind == "staging.odds_lines":
                out = engine.process_line(record)
            elif kind == "staging.betting_splits":
                out = engine.process_split(record)
            else:
                out = engine.process_game(record)
            for topic, rec in out:
                counters[topic] += 1
                await outputs[topic].send(key=game_id.encode(), value=encoders[topic](rec))
            if game_id in engine.game_ids():
                state[game_id] = engine.snapshot(game_id)
            elif game_id in state:
                del state[game_id]
            counters["late"] += len(engine.drain_late())

    return counters
