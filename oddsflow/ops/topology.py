"""``oddsflow topology``: the running flow, read from the code's own wiring.

Nothing here is a hand-kept list: the collectors' sources come from ``producers.collect``, each
stream worker's steps (each with its input topics, output topics and state) from the steps its
task declares and dispatches through (``streams.runtime.steps``, read by ``describe`` beside each
task), and the sink's topic → table mappings from the connector itself. Nothing connects to a
broker.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

from core.settings import Settings
from core.topics import BY_NAME, TopicSpec, raw_topic, topic_name
from oddsflow.jsonout import dumps


@dataclass
class Agent:
    """One step of a stream worker: the topics it reads and writes, the state it keeps."""

    name: str
    inputs: list[str]
    outputs: list[str] = field(default_factory=list)
    state: str | None = None


@dataclass
class StreamWorker:
    role: str
    group: str
    agents: list[Agent]  # the steps, in the order a turn runs them
    outputs: list[str]  # what the steps write, but for the worker's own internal topics
    tables: list[dict[str, str]]  # state tables and their changelog topics


@dataclass
class SinkWrite:
    topic: str
    table: str
    key: list[str]
    mode: str  # insert (once per key), insert+corrections (update/delete on correction), upsert


@dataclass
class Topology:
    sources: list[dict[str, str]]
    workers: list[StreamWorker]
    sink_group: str
    sink: list[SinkWrite]
    topics: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _stream_worker(settings: Settings, role: str) -> StreamWorker:
    """What the role's task wires (its ``describe``): the steps with their inputs and outputs."""
    if role == "staging":
        from streams.staging.worker import describe
    else:
        from streams.features.worker import describe
    d = describe(settings)
    steps = d.get("steps") or [{"name": role, "inputs": d["inputs"], "outputs": d["outputs"]}]
    agents = [
        Agent(step["name"], list(step["inputs"]), list(step.get("outputs", ())), step.get("state"))
        for step in steps
    ]
    return StreamWorker(role, d["group"], agents, d["outputs"], d["tables"])


def _mode(spec: TopicSpec) -> str:
    if spec.upsert:
        return "upsert"
    return "insert+corrections" if spec.corrected else "insert"


def build_topology(settings: Settings) -> Topology:
    """Sources, stream workers and the sink as the code wires them for these settings."""
    from producers.collect import SOURCES
    from sinks.connector import SinkConnector

    workers = [_stream_worker(settings, role) for role in ("staging", "features")]
    connector = SinkConnector(settings)
    sink = [
        SinkWrite(t, m.qualified_table, list(m.spec.key_columns), _mode(m.spec))
        for t, m in connector.mappings.items()
    ]
    sources = [{"source": s, "topic": topic_name(settings, raw_topic(s))} for s in SOURCES]
    topo = Topology(sources, workers, connector.group, sink)
    producers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for s in sources:
        producers.setdefault(s["topic"], []).append(f"collect --source {s['source']}")
    for w in workers:
        for out in dict.fromkeys([*w.outputs, *(t for a in w.agents for t in a.outputs)]):
            producers.setdefault(out, []).append(w.role)
        for a in w.agents:
            for t in a.inputs:
                consumers.setdefault(t, []).append(f"{w.role}/{a.name}")
    for sw in sink:
        consumers.setdefault(sw.topic, []).append(f"sink -> {sw.table}")
    prefix = settings.kafka.topic_prefix
    for name in sorted(set(producers) | set(consumers)):
        spec = BY_NAME.get(name.removeprefix(prefix)) if name.startswith(prefix) else None
        topo.topics.append(
            {
                "topic": name,
                "zone": spec.zone.value if spec else "internal",
                "schema": spec.schema if spec else None,
                "produced_by": producers.get(name, []),
                "consumed_by": consumers.get(name, []),
            }
        )
    return topo


def format_topology(topo: Topology) -> str:
    lines = ["sources (oddsflow collect)"]
    for s in topo.sources:
        lines.append(f"  {s['source']:<16} -> {s['topic']}")
    for w in topo.workers:
        lines.append(f"{w.role} worker (group {w.group})")
        changelog = {t["name"]: t["changelog"] for t in w.tables}
        for a in w.agents:  # source topics → step → output topics, in the order a turn runs
            lines.append(f"  step  {a.name}")
            lines.append(f"        <- {', '.join(a.inputs)}")
            if a.outputs:
                lines.append(f"        -> {', '.join(a.outputs)}")
            if a.state is not None:
                lines.append(f"        table {a.state} (changelog {changelog.get(a.state, '?')})")
        kept = {a.state for a in w.agents}
        for t in w.tables:
            if t["name"] not in kept:
                lines.append(f"  table  {t['name']} (changelog {t['changelog']})")
        if not any(a.outputs for a in w.agents):
            lines.append(f"  writes {', '.join(w.outputs)}")
    lines.append(f"sink worker (group {topo.sink_group})")
    for sw in topo.sink:
        lines.append(f"  {sw.topic:<40} -> {sw.table} ({sw.mode} on {', '.join(sw.key)})")
    unread = [t["topic"] for t in topo.topics if not t["consumed_by"]]
    if unread:
        lines.append(f"topics nobody reads: {', '.join(unread)}")
    return "\n".join(lines)


def add_topology_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def run_topology(settings: Settings, args: argparse.Namespace) -> int:
    """``oddsflow topology``: needs no broker or database."""
    topo = build_topology(settings)
    print(dumps(topo.to_json()) if args.json else format_topology(topo))
    return 0
