"""The quality gate on the real broker: a low-score record is quarantined to dlq.staging with its
reason, never promoted, and reconciliation still balances (quarantined = dead-lettered)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from oddsflow.topics import topic_name
from producers.publisher import Publisher
from schemas.codec import default_codec
from streams.staging.processor import QUALITY_GATE
from streams.staging.reconcile import read_topic, reconcile
from tests.helpers import wait_for, workers
from tests.unit.test_staging_quality import stale_one_sided_envelope


async def test_a_low_score_record_is_quarantined_with_its_reason(pipeline_settings, tmp_path: Path):
    s = pipeline_settings
    assert s.pipeline.processing.quality_gates and s.pipeline.quality_threshold == 0.8
    fetched = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    publisher = Publisher(s, "simulator")
    publisher.publish_encoded(b"ev-stale", stale_one_sided_envelope(fetched))
    assert publisher.flush() == 0
    decode = default_codec().decode

    async def rows() -> list[dict]:
        return reconcile(s)

    with workers(s, ("staging",), tmp_path / "run"):
        (row,) = await wait_for(
            rows, lambda r: bool(r) and bool(r[0]["balanced"]), timeout=90,
            what="the staging zone to account for the record",
        )  # fmt: skip
    # the game record passed; its one-sided, 41-minute-old line was held back
    assert {k: row[k] for k in ("raw_in", "parts", "promoted", "dead_lettered")} == {
        "raw_in": 1, "parts": 2, "promoted": 1, "dead_lettered": 1,
    }  # fmt: skip
    (dead,) = [decode(m.value()) for m in read_topic(s, topic_name(s, "dlq.staging"))]
    assert dead["error_class"] == QUALITY_GATE
    assert dead["reason"].endswith(
        "pinnacle moneyline home: quality score 0.72 < 0.80: other side missing,"
        " quote 41 min older than fetch"
    )
    assert list(read_topic(s, topic_name(s, "staging.odds_lines"))) == []
    assert len(list(read_topic(s, topic_name(s, "staging.games")))) == 1
