"""The typed hot path (streams/staging/fastpath.py) decides exactly as the generic parsers.

Every case runs through two processors, one with the hot path and one without, and compares
what they make: the encoded records and de-dup facts byte for byte, every dead letter (class,
reason, order), the counts. Inputs: the bench's simulator records, the real Odds API capture,
the bad-input cases of test_parsers_bad_input, and generated Odds API payloads with every kind of
flaw mixed in (hypothesis).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.stages import raw_envelopes
from core.formats.base import context_of
from schemas.codec import default_codec
from streams.staging.fastpath import OddsApiStager
from streams.staging.processor import Origin, StageResult, StagingProcessor
from streams.staging.quality import LIVE
from tests.fixtures_path import ODDS_API
from tests.unit.test_parsers_bad_input import PARTIAL, event

FETCHED = datetime(2024, 5, 24, 16, 32, tzinfo=UTC)
SEC = timedelta(seconds=1)
ENCODE = default_codec().encoder("oddsflow.raw.RawEnvelope")
DECODE = default_codec().decode


def envelope(payload: Any, source: str = "odds_api", **request: str) -> bytes:
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    return ENCODE(
        {
            "event_id": "ev-env-1", "source": source, "fetched_at": FETCHED,
            "content_type": "application/json", "payload": payload, "request": request,
        }
    )  # fmt: skip


def summary(result: StageResult) -> dict[str, Any]:
    return {
        "records": result.records,
        "facts": result.facts,
        "dead": [DECODE(d) for d in result.dead],
        "whole": result.whole_record_failed,
        "classes": dict(result.reject_classes),
        "counts": (result.passed, result.quarantined),
        "empty": result.empty,
    }


def both(
    value: bytes,
    *,
    threshold: float | None = 0.8,
    published: datetime | None = FETCHED + SEC,
    now: datetime = FETCHED + 2 * SEC,
    source: str = "odds_api",
) -> dict[str, Any]:
    """The hot path's result, after asserting the generic path makes exactly the same."""
    ms = None if published is None else int(published.timestamp() * 1000)
    origin = Origin(f"raw.odds.{source}", 1, 42, b"k", ms)
    fast = StagingProcessor(quality_threshold=threshold).process(origin, value, now)
    generic = StagingProcessor(quality_threshold=threshold, fast_path=False)
    expected = summary(generic.process(origin, value, now))
    got = summary(fast)
    assert got == expected
    return got


def takes_fast_path(value: bytes, threshold: float | None = 0.8) -> bool:
    env = DECODE(value)
    staged = OddsApiStager(default_codec()).stage(
        env["payload"], context_of(env), FETCHED + 2 * SEC, timedelta(minutes=10), threshold, LIVE
    )
    return staged is not None


def test_simulator_records_are_staged_the_same() -> None:
    for key, value in raw_envelopes(300):
        assert takes_fast_path(value)
        got = both(value, source="simulator", now=datetime.now(UTC), published=None)
        assert len(got["records"]) == 7 and got["dead"] == []
        del key


@pytest.mark.parametrize(
    ("published", "threshold"),
    [
        (FETCHED + SEC, 0.8),  # live, on time
        (FETCHED + 35 * timedelta(minutes=1), 0.8),  # late: scored, passes
        (FETCHED + 2 * timedelta(hours=1), 0.8),  # stale: every record quarantined
        (FETCHED + 2 * timedelta(hours=1), None),  # no gate
        (None, 0.8),  # no Kafka timestamp: the processing time
    ],
)
def test_the_real_odds_api_capture_is_staged_the_same(
    published: datetime | None, threshold: float | None
) -> None:
    value = envelope(ODDS_API.read_bytes())
    assert takes_fast_path(value)
    got = both(value, published=published, threshold=threshold)
    assert len(got["records"]) + got["counts"][1] == 228 + 9


def test_decimal_prices_are_converted_the_same() -> None:
    doc = json.loads(ODDS_API.read_text())
    for ev in doc:
        for bm in ev["bookmakers"]:
            for mk in bm["markets"]:
                for oc in mk["outcomes"]:
                    a = oc["price"]
                    oc["price"] = round(1 + (a / 100 if a > 0 else 100 / -a), 2)
    value = envelope(doc, oddsFormat="decimal")
    assert takes_fast_path(value)
    assert len(both(value)["records"]) == 228 + 9


@pytest.mark.parametrize(("case", "payload", "_classes"), PARTIAL, ids=[p[0] for p in PARTIAL])
def test_bad_input_cases_are_refused_the_same(
    case: str, payload: dict[str, Any], _classes: dict[str, int]
) -> None:
    both(envelope(payload, "simulator"), source="simulator")
    both(envelope([payload, event(id="ev2")]))


def test_refusals_after_parsing_are_made_on_the_hot_path() -> None:
    """Future times, off-grid and implausible lines, implausible pairs and quarantines are decided
    on the hot path (the generic path is only for payloads it cannot parse)."""
    cases = {case: payload for case, payload, _ in PARTIAL}
    for case in ("implausible two-way", "total off grid", "total absurd", "future timestamp"):
        value = envelope(cases[case], "simulator")
        assert takes_fast_path(value), case
        assert both(value, source="simulator")["dead"], case


def test_duplicate_markets_and_doubleheaders_are_staged_the_same() -> None:
    twice = event()
    twice["bookmakers"][0]["markets"] *= 2  # the same market twice: pairs across both
    assert not takes_fast_path(envelope(twice))
    both(envelope(twice))
    late = event(id="ev2", commence_time="2024-05-24T23:40:00Z")
    value = envelope([late, event()])  # a doubleheader, listed late game first
    assert takes_fast_path(value)
    got = both(value)
    assert sorted({k for _s, k, _v in got["records"]}) == [
        b"MLB-20240524-ATL@PIT-1", b"MLB-20240524-ATL@PIT-2",
    ]  # fmt: skip


# -- generated payloads -------------------------------------------------------------------------

T = "2024-05-24T16:31:14Z"
names = st.sampled_from(
    ["Pittsburgh Pirates", "Atlanta Braves", "PIT", "ATL", "Over", "under", "Gotham Knights",
     "Los Angeles", None, 7]
)  # fmt: skip
prices = st.one_of(
    st.sampled_from([-110, -105, 120, 138, -164, -300, 99, -99, 100, -100, 100001, 0]),
    st.integers(-2_000, 2_000),
    st.sampled_from([-110.0, -164.5, 1.61, 2.38, 1.0, "+120", "", None, True, 1e300]),
)
points = st.sampled_from(
    [-1.5, 1.5, 8.5, 8.0, 0.0, -0.0, 8.25, 31.0, 12.5, -11.0, 8, None, "8.5", 0.5]
)
stamps = st.sampled_from(
    [T, "2024-05-24T14:31:14Z", "2024-05-24T17:31:14Z", "2024-05-24T16:40:00Z", "yesterday",
     None, "", 5]
)  # fmt: skip


@st.composite
def outcome(draw: st.DrawFn) -> dict[str, Any]:
    oc = {"name": draw(names), "price": draw(prices)}
    if draw(st.booleans()):
        oc["point"] = draw(points)
    return oc


@st.composite
def market(draw: st.DrawFn) -> dict[str, Any]:
    mk: dict[str, Any] = {
        "key": draw(st.sampled_from(["h2h", "spreads", "totals", "h2h", "player_props", None])),
        "outcomes": draw(st.lists(outcome(), max_size=3)),
    }
    if draw(st.integers(0, 3)):
        mk["last_update"] = draw(stamps)
    return mk


@st.composite
def bookmaker(draw: st.DrawFn) -> dict[str, Any]:
    key = ["fanduel", "pinnacle", "williamhill_us", "Some Book!", None, "draftkings"]
    return {
        "key": draw(st.sampled_from(key)),
        "last_update": draw(stamps),
        "markets": draw(st.lists(market(), max_size=3)),
    }


@st.composite
def odds_event(draw: st.DrawFn) -> dict[str, Any]:
    ev = event(
        id=draw(st.sampled_from(["ev1", "ev2", "", None])),
        commence_time=draw(
            st.sampled_from(["2024-05-24T22:40:00Z", "2024-05-24T12:05:00Z", "tomorrow", None])
        ),
        home_team=draw(st.sampled_from(["Pittsburgh Pirates", "PIT", "Gotham Knights"])),
        away_team=draw(st.sampled_from(["Atlanta Braves", "ATL", "Pittsburgh Pirates"])),
        bookmakers=draw(st.lists(bookmaker(), max_size=3)),
    )
    if draw(st.integers(0, 9)) == 0:
        ev["bookmakers"] = None
    return ev


def clean_event(draw: st.DrawFn) -> dict[str, Any]:
    """An event the hot path can parse (usable names, prices and points), values varied."""
    books = []
    for key in draw(st.lists(st.sampled_from(["fanduel", "pinnacle", "betmgm"]), unique=True)):
        mks = []
        for mkey in draw(st.lists(st.sampled_from(["h2h", "spreads", "totals"]), unique=True)):
            sides = ["Over", "Under"] if mkey == "totals" else ["Pittsburgh Pirates", "ATL"]
            ocs = []
            for name in draw(st.lists(st.sampled_from(sides), min_size=1, max_size=3)):
                # |price| from 100 to 260: pairs sum to 1.0..1.45, around the 1.2 validation allows
                price = draw(st.integers(100, 260)) * draw(st.sampled_from([1, -1]))
                oc: dict[str, Any] = {"name": name, "price": price}
                if mkey != "h2h":
                    oc["point"] = draw(
                        st.sampled_from([-1.5, 1.5, 8.5, 8.25, 40.0, -12.0, 0.0, -0.0])
                    )
                ocs.append(oc)
            mks.append({"key": mkey, "last_update": draw(stamps.filter(_readable)),
                        "outcomes": ocs})  # fmt: skip
        books.append({"key": key, "last_update": T, "markets": mks})
    return event(bookmakers=books)


def _readable(stamp: object) -> bool:
    return isinstance(stamp, str) and stamp.startswith("2024")


GENERATED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
timings = st.sampled_from([FETCHED + SEC, FETCHED + timedelta(minutes=30), None])


@GENERATED
@given(data=st.data())
def test_generated_payloads_with_flaws_are_staged_the_same(data: st.DataObject) -> None:
    events = data.draw(st.lists(odds_event(), max_size=3))
    single = len(events) == 1 and data.draw(st.booleans())
    request = data.draw(st.sampled_from([{}, {"oddsFormat": "decimal"}, {"game_number": "2"}]))
    value = envelope(events[0] if single else events, **request)
    both(value, threshold=data.draw(st.sampled_from([0.8, None])), published=data.draw(timings))


@GENERATED
@given(data=st.data())
def test_generated_clean_payloads_take_the_hot_path_and_are_staged_the_same(
    data: st.DataObject,
) -> None:
    value = envelope(clean_event(data.draw))
    assert takes_fast_path(value)
    both(value, threshold=data.draw(st.sampled_from([0.8, 0.95, None])),
         published=data.draw(timings))  # fmt: skip
