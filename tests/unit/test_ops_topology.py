"""`oddsflow topology` reads the wiring of the workers, the sink and the collectors."""

from __future__ import annotations

import argparse
import json

import pytest

from core.settings import Settings
from core.topics import CATALOG, RAW_SOURCES
from oddsflow.ops.topology import add_topology_arguments, build_topology, run_topology


@pytest.fixture
def prefixed() -> Settings:
    return Settings(kafka={"topic_prefix": "p1."})


def test_workers_agents_and_outputs_come_from_the_apps(prefixed: Settings) -> None:
    topo = build_topology(prefixed)
    staging, features = topo.workers
    assert (staging.role, staging.group) == ("staging", "p1.oddsflow-staging")
    inputs = {a.name: a.inputs for a in staging.agents}
    assert sorted(inputs["normalize"]) == sorted(f"p1.raw.odds.{s}" for s in RAW_SOURCES)
    assert inputs["dedupe"] == ["p1.oddsflow-staging-repartition"]
    assert set(staging.outputs) >= {
        "p1.staging.odds_lines",
        "p1.staging.betting_splits",
        "p1.staging.games",
        "p1.dlq.staging",
    }
    outputs = {a.name: a.outputs for a in staging.agents}
    assert "p1.oddsflow-staging-repartition" in outputs["normalize"]  # the steps connect
    assert inputs["quality"][0] in outputs["dedupe"]  # the counted deltas
    assert outputs["quality"] == ["p1.operational.quality"]
    assert [a.state for a in staging.agents] == [None, "dedupe", "quality"]
    (feature_agent,) = features.agents
    assert sorted(feature_agent.inputs) == [
        "p1.staging.betting_splits",
        "p1.staging.games",
        "p1.staging.odds_lines",
    ]
    assert {
        f"p1.curated.{t}"
        for t in ("line_velocity", "steam_moves", "sharp_signals", "consensus", "feature_vectors")
    } <= set(features.outputs)
    assert feature_agent.outputs == features.outputs
    assert feature_agent.state == "features-state"


def test_sink_writes_every_catalog_topic_to_its_table(prefixed: Settings) -> None:
    topo = build_topology(prefixed)
    assert topo.sink_group == "p1.oddsflow-sink"
    writes = {w.topic: (w.table, w.mode) for w in topo.sink}
    assert len(writes) == len(CATALOG)
    assert writes["p1.curated.steam_moves"] == ("analytics.steam_moves", "insert+corrections")
    assert writes["p1.staging.games"] == ("core_betting.games", "upsert")
    by_topic = {t["topic"]: t for t in topo.topics}
    steam = by_topic["p1.curated.steam_moves"]
    assert steam["produced_by"] == ["features"]
    assert steam["consumed_by"] == ["sink -> analytics.steam_moves"]
    assert by_topic["p1.raw.odds.sbd"]["produced_by"] == ["collect --source sbd"]


def test_command_prints_json_and_tables(
    prefixed: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_topology_arguments(parser)
    assert run_topology(prefixed, parser.parse_args(["--json"])) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [w["role"] for w in doc["workers"]] == ["staging", "features"]
    dedupe = doc["workers"][0]["agents"][1]
    assert dedupe["name"] == "dedupe" and "p1.staging.games" in dedupe["outputs"]
    assert set(doc["workers"][0]) >= {"role", "group", "agents", "outputs", "tables"}
    assert run_topology(prefixed, parser.parse_args([])) == 0
    text = capsys.readouterr().out
    assert "step  features" in text and "p1.staging.odds_lines" in text
    assert "  step  quality\n        <- p1.oddsflow-staging-quality-deltas\n" in text
    assert "        -> p1.operational.quality\n" in text
    assert (
        "  p1.curated.steam_moves                   -> analytics.steam_moves"
        " (insert+corrections on move_id)" in text
    )
