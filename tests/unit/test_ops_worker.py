"""Worker plumbing without a broker: JSON log lines, /live and /ready, settings from the env,
and the latency histogram's exposition."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.probes import LIVE_STALE_SECONDS, Probe, health_app
from core.settings import SettingsError, load_settings
from oddsflow.ops.metrics import LatencyTracker
from oddsflow.worker import HEALTH_PORT_ENV, LOG_FORMAT_ENV, JsonFormatter


def test_json_log_line_carries_role_level_and_message() -> None:
    record = logging.LogRecord("oddsflow.sink", logging.WARNING, __file__, 1, "lag %d", (7,), None)
    doc = json.loads(JsonFormatter("sink").format(record))
    assert (doc["role"], doc["level"], doc["logger"], doc["message"]) == (
        "sink", "WARNING", "oddsflow.sink", "lag 7",
    )  # fmt: skip
    assert doc["ts"].endswith("+00:00") and isinstance(doc["pid"], int)


def test_worker_settings_from_the_environment_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(HEALTH_PORT_ENV, raising=False)
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    w = load_settings().worker
    assert (w.health_port, w.log_format) == (0, "text")  # off and readable by default
    monkeypatch.setenv(HEALTH_PORT_ENV, "8081")
    monkeypatch.setenv(LOG_FORMAT_ENV, "JSON")
    w = load_settings().worker
    assert (w.health_port, w.log_format) == (8081, "json")
    monkeypatch.setenv(HEALTH_PORT_ENV, "http")
    with pytest.raises(SettingsError, match=r"worker\.health_port"):
        load_settings()
    monkeypatch.setenv(HEALTH_PORT_ENV, "0")
    monkeypatch.setenv(LOG_FORMAT_ENV, "xml")
    with pytest.raises(SettingsError, match=r"worker\.log_format"):
        load_settings()


async def test_live_and_ready_endpoints() -> None:
    state = {"assigned": []}

    def ready() -> tuple[bool, dict]:
        if state.get("boom"):
            raise RuntimeError("consumer not started")
        return bool(state["assigned"]), {"assigned": state["assigned"]}

    probe = Probe("staging", ready)
    beat = asyncio.create_task(probe.heartbeat())
    runner = web.AppRunner(health_app(probe))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    async def get(path: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
            return r.status, await r.json()

    try:
        status, body = await get("/live")
        assert status == 200 and body["ok"] is True and body["role"] == "staging"
        assert await get("/ready") == (503, {"ok": False, "role": "staging",
                                            "pid": body["pid"], "assigned": []})  # fmt: skip
        state["assigned"] = ["raw:0"]
        assert (await get("/ready"))[0] == 200
        state["boom"] = True
        status, body = await get("/ready")
        assert status == 503 and body["error"] == "consumer not started"
        probe.beat = time.monotonic() - LIVE_STALE_SECONDS - 1  # as if the loop had stalled
        beat.cancel()
        status, body = await get("/live")
        assert status == 503 and body["heartbeat_age_s"] > LIVE_STALE_SECONDS
    finally:
        beat.cancel()
        await runner.cleanup()


def test_latency_histogram_exposition_is_cumulative() -> None:
    registry = CollectorRegistry()
    tracker = LatencyTracker(load_settings(), registry)
    for v in (0.2, 0.7, 0.9, 4.0):
        tracker.histogram.labels("core_betting.odds_lines").observe(v)
    (family,) = text_string_to_metric_families(generate_latest(registry).decode())
    assert (family.name, family.type) == ("oddsflow_e2e_latency_seconds", "histogram")
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("oddsflow_e2e_latency_seconds_bucket", "0.5")] == 1
    assert samples[("oddsflow_e2e_latency_seconds_bucket", "1.0")] == 3
    assert samples[("oddsflow_e2e_latency_seconds_bucket", "+Inf")] == 4
    assert samples[("oddsflow_e2e_latency_seconds_sum", None)] == pytest.approx(5.8)
    assert samples[("oddsflow_e2e_latency_seconds_count", None)] == 4
