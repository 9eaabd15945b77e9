"""The quality gate on the real broker: a low-score record is quarantined to dlq.staging with its
reason, never promoted, and reconciliation still balances (quarantined = dead-lettered)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.topics import topic_name
from producers.publisher import Publisher
from schemas.codec import default_codec
from streams.staging.processor import QUALITY_GATE
from streams.staging.reconcile import read_topic, reconcile
from tests.helpers import wait_for, workers
from tests.unit.test_staging_quality import stale_one_sided_envelope


async def test_a_low_score_record_is_quarantined_with_its_reason(pipeline_settings, tmp_path: Path):
    s = pipeline_settings
    assert s.pipeline.processing.quality_gates and s.pipeline.quality_threshold == 0.8
    # fetched 41 minutes ago, published now: one weakness more than the missing other side
    fetched = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=41)
    publisher = Publisher(s, "odds_api")
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
    # the game record passed; its one-sided line, published 41 minutes after its fetch, was held
    assert {k: row[k] for k in ("raw_in", "parts", "promoted", "dead_lettered")} == {
        "raw_in": 1, "parts": 2, "promoted": 1, "dead_lettered": 1,
    }  # fmt: skip
    (dead,) = [decode(m.value()) for m in read_topic(s, topic_name(s, "dlq.staging"))]
    assert dead["error_class"] == QUALITY_GATE
    # 41 minutes from fetch to publish; a worker without the Kafka timestamp measures up to its
    # own processing, a minute or so later at most
    assert re.fullmatch(
        r".* book pinnacle moneyline home: quality score 0\.7[12] < 0\.80: other side missing,"
        r" published 4[12] min after it was fetched",
        dead["reason"],
    ), dead["reason"]
    assert list(read_topic(s, topic_name(s, "staging.odds_lines"))) == []
    assert len(list(read_topic(s, topic_name(s, "staging.games")))) == 1
