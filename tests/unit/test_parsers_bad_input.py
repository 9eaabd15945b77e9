"""Bad input of every kind: the payload is refused (ParseError) or the part is rejected."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.formats import ParseError, parse
from streams.staging.validate import parse_and_validate

NOW = datetime(2024, 5, 24, 16, 32, tzinfo=UTC)
PIN_HEADER = (
    "BaseballRefID,EventDateTimeUTC,AwayTeam,HomeTeam,DoubleHeaderGame,AwayStartingPitcher,"
    "HomeStartingPitcher,FinalScoreAway,FinalScoreHome,EnteredDateTimeUTC,SpreadTeam1,SpreadUS1,"
    "SpreadUS2,MoneyUS1,MoneyUS2,TotalPoints,TotalUSOver,TotalUSUnder"
)
PIN_ROW = (
    "PIT201604030,2016-04-03 20:05:00+00:00,St. Louis Cardinals,Pittsburgh Pirates,0.0,"
    "A WAINWRIGHT,F LIRIANO,1,4.0,2016-03-31 22:56:01.869999886+00:00,,,,-110.0,102.0,6.5,106,-117"
)
SBRO_HEADER = (
    "Date,Rot,VH,Team,Pitcher,1st,2nd,3rd,4th,5th,6th,7th,8th,9th,Final,Open,Close,Run Line,"
    "Unnamed: 18,Open OU,Unnamed: 20,Close OU,Unnamed: 22"
)
SBRO_V = "329,901,V,CUB,JLESTER-L,3,1,0,1,0,0,3,0,0,8,-175,-200.0,-1.5,-125,8.0,-105,8.0,-120"
SBRO_H = "329,902,H,MIA,JURENA-R,1,0,3,0,0,0,0,0,0,4,155,175.0,1.5,105,8.0,-115,8.0,100"


def event(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "id": "ev1",
        "sport_key": "baseball_mlb",
        "commence_time": "2024-05-24T22:40:00Z",
        "home_team": "Pittsburgh Pirates",
        "away_team": "Atlanta Braves",
        "bookmakers": [
            {
                "key": "fanduel",
                "title": "FanDuel",
                "last_update": "2024-05-24T16:31:14Z",
                "markets": [
                    {
                        "key": "h2h",
                        "last_update": "2024-05-24T16:31:14Z",
                        "outcomes": [
                            {"name": "Atlanta Braves", "price": -164},
                            {"name": "Pittsburgh Pirates", "price": 138},
                        ],
                    }
                ],
            }
        ],
    }
    ev.update(over)
    return ev


def with_market(key: str, outcomes: list[dict[str, Any]], **mk: Any) -> dict[str, Any]:
    ev = event()
    ev["bookmakers"][0]["markets"] = [
        {"key": key, "last_update": "2024-05-24T16:31:14Z", "outcomes": outcomes, **mk}
    ]
    return ev


def env(source: str, payload: Any, **request: str) -> dict[str, Any]:
    if not isinstance(payload, bytes | str):
        payload = json.dumps(payload).encode()
    return {
        "event_id": "bad-1",
        "source": source,
        "fetched_at": NOW,
        "content_type": "application/json",
        "payload": payload,
        "request": request,
    }


def pin(row: str = PIN_ROW, header: str = PIN_HEADER) -> dict[str, Any]:
    return env("file", row.encode(), format="pinnacle", header=header)


def sbro(v: str = SBRO_V, h: str = SBRO_H, **req: str) -> dict[str, Any]:
    request = {"format": "sbro", "header": SBRO_HEADER, "season": "2018", **req}
    return env("file", f"{v}\n{h}".encode(), **request)


def ml(a: Any, h: Any) -> dict[str, Any]:
    return with_market(
        "h2h", [{"name": "Atlanta Braves", "price": a}, {"name": "Pittsburgh Pirates", "price": h}]
    )


# (case id, envelope, expected error class) for payloads refused as a whole
WHOLE: list[tuple[str, dict[str, Any], str]] = [
    ("garbage bytes", env("odds_api", b"\xff\xfe\x00garbage"), "bad_encoding"),
    ("not json", env("odds_api", b"<html>502 Bad Gateway</html>"), "bad_json"),
    ("empty payload", env("odds_api", b""), "bad_json"),
    ("truncated json", env("sbd", b'{"games": [{"_id": '), "bad_json"),
    ("json number", env("odds_api", b"42"), "wrong_shape"),
    ("json string", env("sbd", b'"games"'), "wrong_shape"),
    ("sbd list", env("sbd", b"[]"), "wrong_shape"),
    ("sbd no games", env("sbd", {"group": "2025-06-13"}), "missing_field"),
    ("sbd games not list", env("sbd", {"games": {}}), "wrong_shape"),
    ("an no games", env("action_network", {"league": "mlb"}), "missing_field"),
    ("missing home_team", env("simulator", event(home_team=None)), "missing_field"),
    ("missing commence", env("simulator", event(commence_time="")), "missing_field"),
    ("missing id", env("simulator", event(id=None)), "missing_field"),
    ("unknown team", env("simulator", event(home_team="Pittsburgh Steelers")), "unknown_team"),
    ("city-only name", env("simulator", event(home_team="Los Angeles")), "ambiguous_team"),
    ("same team twice", env("simulator", event(away_team="PIT")), "wrong_shape"),
    ("bad commence", env("simulator", event(commence_time="tomorrow")), "bad_timestamp"),
    ("naive commence", env("simulator", event(commence_time="2024-05-24 22:40")), "bad_timestamp"),
    ("bookmakers not list", env("simulator", event(bookmakers={})), "wrong_shape"),
    ("unknown source", env("fanduel_scraper", event()), "unknown_source"),
    ("file unknown format", env("file", b"x", format="xlsx"), "unknown_format"),
    ("file no format", env("file", b"x"), "unknown_format"),
    ("pinnacle no header", env("file", PIN_ROW.encode(), format="pinnacle"), "missing_field"),
    ("pinnacle short row", pin("PIT201604030,2016-04-03 20:05:00+00:00"), "bad_csv"),
    ("pinnacle header lacks", pin(header="a,b,c"), "missing_field"),
    (
        "pinnacle bad time",
        pin(PIN_ROW.replace("2016-04-03 20:05:00+00:00", "soon")),
        "bad_timestamp",
    ),
    (
        "pinnacle unknown team",
        pin(PIN_ROW.replace("St. Louis Cardinals", "St. Louis Blues")),
        "unknown_team",
    ),
    ("pinnacle bad dh", pin(PIN_ROW.replace(",0.0,A W", ",7.0,A W")), "wrong_shape"),
    (
        "sbro one row",
        env("file", SBRO_V.encode(), format="sbro", header=SBRO_HEADER, season="2018"),
        "wrong_shape",
    ),
    ("sbro swapped rows", sbro(SBRO_H, SBRO_V), "wrong_shape"),
    ("sbro no season", sbro(season=""), "missing_field"),
    (
        "sbro bad date",
        sbro(SBRO_V.replace("329,", "1399,", 1), SBRO_H.replace("329,", "1399,", 1)),
        "wrong_shape",
    ),
    (
        "sbro LOS is not LAA",
        sbro(SBRO_V.replace("CUB", "LOS"), SBRO_H.replace("MIA", "LAD")),
        "wrong_shape",
    ),
    ("sbro unknown code", sbro(SBRO_V.replace("CUB", "XXX")), "unknown_team"),
    ("sbro bad game number", sbro(game_number="0"), "wrong_shape"),
    (
        "envelope without source",
        {"event_id": "x", "fetched_at": NOW, "payload": b"[]"},
        "missing_field",
    ),
    (
        "envelope without event id",
        {"source": "sbd", "fetched_at": NOW, "payload": b"[]"},
        "missing_field",
    ),
    (
        "envelope without fetched_at",
        {"event_id": "x", "source": "sbd", "payload": b"[]"},
        "missing_field",
    ),
    (
        "envelope naive fetched_at",
        {"event_id": "x", "source": "sbd", "fetched_at": datetime(2024, 1, 1), "payload": b"[]"},
        "bad_timestamp",
    ),
    (
        "envelope without payload",
        {"event_id": "x", "source": "sbd", "fetched_at": NOW},
        "missing_field",
    ),
    ("payload not bytes", env("sbd", b"").__or__({"payload": 12}), "wrong_shape"),
    ("archive not json", env("file", b"nope", format="jsonl"), "bad_json"),
    (
        "archive bad base64",
        env(
            "file",
            {
                "event_id": "i",
                "source": "sbd",
                "fetched_at": "2024-01-01T00:00:00Z",
                "payload_b64": "!!",
            },
            format="jsonl",
        ),
        "bad_encoding",
    ),
    (
        "archive no payload",
        env(
            "file",
            {"event_id": "i", "source": "sbd", "fetched_at": "2024-01-01T00:00:00Z"},
            format="jsonl",
        ),
        "missing_field",
    ),
    (
        "archive in archive",
        env(
            "file",
            {
                "event_id": "i",
                "source": "file",
                "fetched_at": "2024-01-01T00:00:00Z",
                "payload": "{}",
                "request": {"format": "jsonl"},
            },
            format="jsonl",
        ),
        "wrong_shape",
    ),
]


@pytest.mark.parametrize(("case", "envelope", "error_class"), WHOLE, ids=[w[0] for w in WHOLE])
def test_whole_payload_refused(case: str, envelope: dict[str, Any], error_class: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse(envelope)
    assert exc.value.error_class == error_class, exc.value.reason
    assert exc.value.reason


def test_los_is_the_dodgers_in_sbro() -> None:
    p = parse(sbro(SBRO_V.replace("CUB", "LOS")))
    assert p.games[0]["game_id"] == "MLB-20180329-LAD@MIA-1"


# (case id, envelope, expected reject classes) for payloads kept in part
PARTIAL: list[tuple[str, dict[str, Any], dict[str, int]]] = [
    ("odds < 100", ml(-99, 138), {"price_out_of_range": 1}),
    ("odds beyond bound", ml(-164, 100001), {"price_out_of_range": 1}),
    ("empty price", ml("", 138), {"missing_price": 1}),
    ("null price", ml(None, 138), {"missing_price": 1}),
    ("string price nan", ml("NaN", 138), {"non_finite_price": 1}),
    ("fractional price", ml(-164.5, 138), {"invalid_price": 1}),
    ("boolean price", ml(True, 138), {"invalid_price": 1}),
    ("implausible two-way", ml(-300, -300), {"implausible_market": 1}),
    ("below one two-way", ml(120, 120), {"implausible_market": 1}),
    (
        "unknown outcome team",
        with_market("h2h", [{"name": "Los Angeles", "price": -110}]),
        {"unknown_side": 1},
    ),
    ("unknown market", with_market("player_props", []), {"unknown_market": 1}),
    (
        "total off grid",
        with_market(
            "totals",
            [
                {"name": "Over", "price": -110, "point": 8.25},
                {"name": "Under", "price": -110, "point": 8.25},
            ],
        ),
        {"off_grid_line": 2},
    ),
    (
        "spread off grid",
        with_market("spreads", [{"name": "Atlanta Braves", "price": -110, "point": -1.25}]),
        {"off_grid_line": 1},
    ),
    (
        "total absurd",
        with_market("totals", [{"name": "Over", "price": -110, "point": 104.0}]),
        {"implausible_line": 1},
    ),
    (
        "total missing point",
        with_market("totals", [{"name": "Over", "price": -110}]),
        {"missing_line": 1},
    ),
    (
        "total nan point",
        with_market("totals", [{"name": "Over", "price": -110, "point": "nan"}]),
        {"non_finite_line": 1},
    ),
    (
        "unknown side word",
        with_market("totals", [{"name": "Push", "price": -110, "point": 8.5}]),
        {"unknown_side": 1},
    ),
    (
        "future timestamp",
        with_market(
            "h2h", [{"name": "Atlanta Braves", "price": -110}], last_update="2024-05-25T16:31:14Z"
        ),
        {"future_timestamp": 1},
    ),
    (
        "bad last_update",
        with_market("h2h", [{"name": "Atlanta Braves", "price": -110}], last_update="yesterday"),
        {"bad_timestamp": 1},
    ),
    ("outcomes not list", with_market("h2h", {}), {"wrong_shape": 1}),  # type: ignore
]


@pytest.mark.parametrize(("case", "payload", "classes"), PARTIAL, ids=[p[0] for p in PARTIAL])
def test_part_of_payload_rejected(
    case: str, payload: dict[str, Any], classes: dict[str, int]
) -> None:
    p = parse_and_validate(env("simulator", payload))
    got: dict[str, int] = {}
    for r in p.rejects:
        got[r.error_class] = got.get(r.error_class, 0) + 1
        assert "ev1" in r.reason or "MLB-20240524-ATL@PIT-1" in r.reason
    assert got == classes
    assert len(p.games) == 1


def test_list_keeps_good_events_and_rejects_bad_ones() -> None:
    doc = [
        event(),
        event(id="ev2", home_team="Gotham Knights"),
        "junk",
        event(id="ev3", home_team=None),
    ]
    p = parse(env("odds_api", doc))
    assert sorted(r.error_class for r in p.rejects) == [
        "missing_field",
        "unknown_team",
        "wrong_shape",
    ]
    assert len(p.lines) == 2


def test_unknown_book_and_bad_bookmaker() -> None:
    ev = event()
    ev["bookmakers"].append({"key": "Some Book!", "markets": []})
    ev["bookmakers"].append("junk")
    p = parse(env("simulator", ev))
    assert sorted(r.error_class for r in p.rejects) == ["unknown_book", "wrong_shape"]


def test_decimal_odds_request_is_converted() -> None:
    p = parse(env("odds_api", [ml(1.61, 2.38)], oddsFormat="decimal"))
    assert [x["price_american"] for x in p.lines] == [-164, 138]


def test_future_tolerance_parameter() -> None:
    ev = with_market(
        "h2h", [{"name": "Atlanta Braves", "price": -110}], last_update="2024-05-24T16:40:00Z"
    )
    assert parse_and_validate(env("simulator", ev)).rejects[0].error_class == "future_timestamp"
    p = parse_and_validate(env("simulator", ev), future_tolerance=timedelta(minutes=10))
    assert p.rejects == [] and len(p.lines) == 1


def test_pinnacle_half_filled_market_is_rejected() -> None:
    p = parse(pin(PIN_ROW.replace(",6.5,106,-117", ",6.5,,-117")))
    assert [r.error_class for r in p.rejects] == ["missing_price"]
    assert [x["side"] for x in p.lines if x["market"] == "total"] == ["under"]


def test_archive_redispatches_with_outer_lineage() -> None:
    inner = {
        "event_id": "inner-1",
        "source": "odds_api",
        "fetched_at": "2024-05-24T16:32:00Z",
        "payload_b64": base64.b64encode(json.dumps([event()]).encode()).decode(),
        "request": {"url": "/v4/sports/baseball_mlb/odds"},
    }
    p = parse(env("file", inner, format="jsonl"))
    assert [x["price_american"] for x in p.lines] == [-164, 138]
    assert p.lines[0]["source_event_id"] == "bad-1"
    assert p.lines[0]["source"] == "file"
    assert p.lines[0]["ingested_at"] == datetime(2024, 5, 24, 16, 32, tzinfo=UTC)
    inner_text = dict(inner, payload=json.dumps(event()))
    del inner_text["payload_b64"]
    assert len(parse(env("file", inner_text, format="jsonl")).lines) == 2
    inner_pin = {
        "event_id": "i",
        "source": "file",
        "fetched_at": 1_700_000_000_000_000,
        "payload": PIN_ROW,
        "request": {"format": "pinnacle", "header": PIN_HEADER},
    }
    assert len(parse(env("file", inner_pin, format="jsonl")).lines) == 4
