"""``oddsflow topology``: the running flow, read from the code's own wiring.

Nothing here is a hand-kept list: the collectors' sources come from ``producers.collect``, each
stream worker's agents, input channels, output topics and tables from building its faust app
exactly as ``oddsflow worker`` does (``streams.app.create_app`` + the role's ``register``, with
``app.topic``/``app.Table`` observed while it registers), and the sink's topic → table mappings
from the connector itself. Building the apps connects to nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oddsflow.jsonout import dumps
from oddsflow.settings import Settings
from oddsflow.topics import BY_NAME, raw_topic, topic_name


@dataclass
class Agent:
    name: str
    inputs: list[str]


@dataclass
class StreamWorker:
    role: str
    group: str
    agents: list[Agent]
    outputs: list[str]  # declared, not consumed (or internal), or named by OUTPUTS/EVENTS
    tables: list[dict[str, str]]  # faust tables and their changelog topics


@dataclass
class SinkWrite:
    topic: str
    table: str
    key: list[str]
    mode: str  # insert (once per natural key) or upsert (latest per key)


@dataclass
class Topology:
    sources: list[dict[str, str]]
    workers: list[StreamWorker]
    sink_group: str
    sink: list[SinkWrite]
    topics: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _features_worker(settings: Settings) -> StreamWorker:
    """The features worker is a Kafka transaction loop, not a faust app: it says what it wires."""
    from streams.features.worker import describe

    d = describe(settings)
    return StreamWorker("features", d["group"], [Agent("features", d["inputs"])], d["outputs"],
                        d["tables"])  # fmt: skip


def _stream_worker(settings: Settings, role: str) -> StreamWorker:
    """Build the role's faust app the way the worker does and read what it wired."""
    from streams.app import create_app, register_role

    if role == "features":
        return _features_worker(settings)
    app = create_app(settings, role)
    from streams.staging import agents as module

    declared: list[Any] = []
    tables: list[Any] = []
    make_topic, make_table = app.topic, app.Table

    def topic(*names: str, **kw: Any) -> Any:
        t = make_topic(*names, **kw)
        declared.append(t)
        return t

    def table(*args: Any, **kw: Any) -> Any:
        t = make_table(*args, **kw)
        tables.append(t)
        return t

    app.topic, app.Table = topic, table  # type: ignore[method-assign]
    try:
        register_role(app, settings, role)  # exactly what the worker registers
    finally:
        app.topic, app.Table = make_topic, make_table  # type: ignore[method-assign]
    agents = [
        Agent(name, list(getattr(agent.channel, "topics", ()) or ()))
        for name, agent in app.agents.items()
    ]
    consumed = {t for a in agents for t in a.inputs}
    outputs: list[str] = []
    for t in declared:
        for name in t.topics or ():
            if (name not in consumed or t.internal) and name not in outputs:
                outputs.append(name)
    # topics an agent sends to through the producer are named by its module's OUTPUTS/EVENTS
    named = getattr(module, "OUTPUTS", ())
    named = list(named.values()) if isinstance(named, dict) else list(named)
    if role == "staging":
        from streams.staging.quality_report import TOPIC as QUALITY_TOPIC

        named.append(QUALITY_TOPIC)
    if isinstance(getattr(module, "EVENTS", None), str):
        named.append(module.EVENTS)
    for logical in named:
        name = topic_name(settings, logical)
        if name not in outputs:
            outputs.append(name)
    seen = {id(t) for t in tables}
    tables += [t for t in app.tables.values() if id(t) not in seen]
    return StreamWorker(
        role,
        app.conf.id,
        agents,
        outputs,
        [{"name": t.name, "changelog": t.changelog_topic.get_topic_name()} for t in tables],
    )


def build_topology(settings: Settings) -> Topology:
    """Sources, stream workers and the sink as the code wires them for these settings."""
    from producers.collect import SOURCES
    from sinks.connector import SinkConnector

    # faust apps create their state folders: keep them out of the real state dir
    with tempfile.TemporaryDirectory(prefix="oddsflow-topology-") as scratch:
        quiet = settings.model_copy(update={"state_dir": Path(scratch)})
        workers = [_stream_worker(quiet, role) for role in ("staging", "features")]
    connector = SinkConnector(settings)
    sink = [
        SinkWrite(
            t, m.qualified_table, list(m.spec.key_columns), "upsert" if m.spec.upsert else "insert"
        )
        for t, m in connector.mappings.items()
    ]
    sources = [{"source": s, "topic": topic_name(settings, raw_topic(s))} for s in SOURCES]
    topo = Topology(sources, workers, connector.group, sink)
    producers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for s in sources:
        producers.setdefault(s["topic"], []).append(f"collect --source {s['source']}")
    for w in workers:
        for out in w.outputs:
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
        for a in w.agents:
            lines.append(f"  agent {a.name:<20} <- {', '.join(a.inputs)}")
        lines.append(f"  writes {', '.join(w.outputs)}")
        for t in w.tables:
            lines.append(f"  table  {t['name']} (changelog {t['changelog']})")
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
