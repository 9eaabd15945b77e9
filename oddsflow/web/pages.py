"""Server-rendered HTML: plain string templates, every value escaped.

No template engine: three small pages do not justify a dependency, and ``html.escape`` on every
interpolated value (plus :func:`json_script` for data handed to the scripts) is the whole of the
safety story. The scripts only add what must be live: charts, server-sent events, polling.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from oddsflow.errors import shorten
from oddsflow.web.queries import CHART_SIDE, MARKETS

ASSET_VERSION = "2"  # bump when a static file changes: browsers cache them
EXAMPLE_WIDTH = 100  # characters of a dead-letter reason in the table (ops.js: the same)


def json_script(element_id: str, data: Any) -> str:
    """Data for the page's script, safe inside <script> (no '</' can close the element)."""
    text = json.dumps(data, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="{escape(element_id)}">{text}</script>'


def layout(title: str, body: str, scripts: tuple[str, ...] = (), active: str = "") -> str:
    def nav(href: str, label: str, key: str) -> str:
        cls = ' class="active"' if key == active else ""
        return f'<a href="{href}"{cls}>{label}</a>'

    tags = "".join(f'<script src="/static/{s}?v={ASSET_VERSION}"></script>' for s in scripts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · oddsflow</title>
<link rel="stylesheet" href="/static/app.css?v={ASSET_VERSION}">
</head><body>
<header><span class="brand">oddsflow</span>
<nav>{nav("/", "Games", "games")}{nav("/ops", "Operations", "ops")}</nav></header>
<main>{body}</main>
{tags}
</body></html>"""


def _time(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%a %d %b %H:%M UTC")


def _american(prob: float | None) -> str:
    """A no-vig probability as a fair American price (what bettors read)."""
    if prob is None or not 0 < prob < 1:
        return "-"
    if prob >= 0.5:
        return f"{-round(100 * prob / (1 - prob))}"
    return f"+{round(100 * (1 - prob) / prob)}"


def _consensus_cell(game: dict[str, Any], market: str) -> str:
    c = game["consensus"]
    if market == "moneyline":
        home, away = c.get("moneyline:home"), c.get("moneyline:away")
        if not home:
            return "-"
        a = _american(away["prob"]) if away else "-"
        return (
            f'<span title="fair price from the median no-vig probability">'
            f"{escape(_american(home['prob']))} / {escape(a)}</span>"
        )
    side = CHART_SIDE[market]
    x = c.get(f"{market}:{side}")
    if not x:
        return "-"
    line = (
        "-" if x["line"] is None else f"{x['line']:+g}" if market == "spread" else f"{x['line']:g}"
    )
    return f"{escape(line)} <small>({x['prob'] * 100:.1f}% {side})</small>"


def games_page(games: list[dict[str, Any]], slate: str) -> str:
    rows = []
    for g in games:
        flags = []
        if g["steam"]:
            flags.append(f'<span class="flag steam" title="steam moves">steam {g["steam"]}</span>')
        if g["rlm"]:
            flags.append(
                f'<span class="flag rlm" title="reverse line movement">RLM {g["rlm"]}</span>'
            )
        if g["sharp"]:
            flags.append(f'<span class="flag sharp" title="sharp action">sharp {g["sharp"]}</span>')
        href = "/game/" + quote(g["game_id"], safe="")
        rows.append(
            f'<tr data-game-id="{escape(g["game_id"])}" data-steam="{g["steam"]}"'
            f' data-sharp="{g["sharp"]}" data-rlm="{g["rlm"]}">'
            f'<td><a href="{href}">{escape(g["away_team"])} @ {escape(g["home_team"])}</a></td>'
            f"<td>{escape(_time(g['commence_time']))}</td>"
            f"<td>{_consensus_cell(g, 'moneyline')}</td>"
            f"<td>{_consensus_cell(g, 'spread')}</td>"
            f"<td>{_consensus_cell(g, 'total')}</td>"
            f'<td class="flags">{"".join(flags) or "-"}</td></tr>'
        )
    table = (
        "<table class='games'><thead><tr><th>Game</th><th>First pitch</th>"
        "<th>Moneyline home / away</th><th>Run line (home)</th><th>Total</th><th>Signals</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="empty">No games on this slate yet.</p>'
    )
    body = (
        f"<h1>Games</h1><p class='sub'>{escape(slate)} · latest cross-book consensus"
        f" (fair prices from the median no-vig probability)</p>{table}"
    )
    return layout("Games", body, active="games")


def game_page(game: dict[str, Any]) -> str:
    charts = []
    for m in MARKETS:
        side = CHART_SIDE[m]
        charts.append(
            f'<section class="market" data-market="{m}">'
            f"<h2>{m.capitalize()} <small>{side}, no-vig probability %</small>"
            f'<span class="counts" data-market="{m}"></span></h2>'
            f'<div class="chart"><canvas id="chart-{m}" aria-label="{m} chart"></canvas></div>'
            f'<ul class="signals" id="signals-{m}"></ul></section>'
        )
    body = (
        f"<h1>{escape(game['away_team'])} @ {escape(game['home_team'])}</h1>"
        f'<p class="sub">First pitch {escape(_time(game["commence_time"]))} ·'
        f" <code>{escape(game['game_id'])}</code> ·"
        ' <span id="live" class="live">connecting…</span></p>'
        f'<div class="legend-note">▲ steam (toward home/over) ▼ steam (toward away/under)'
        f" ◆ sharp action ■ reverse line movement</div>"
        f"{''.join(charts)}{json_script('game-data', game)}"
    )
    return layout(f"{game['away_team']} @ {game['home_team']}", body,
                  ("chart.umd.min.js", "game.js"), active="games")  # fmt: skip


def ops_page(
    snapshot: dict[str, Any], dead: list[dict[str, Any]], quality: list[dict[str, Any]]
) -> str:
    dead_rows = "".join(
        f"<tr><td>{escape(d['stage'])}</td><td>{escape(d['source'])}</td>"
        f"<td>{escape(d['error_class'])}</td><td class='num'>{d['count']}</td>"
        f"<td>{escape(_time(d['last']))}</td>"
        f"<td class='reason' title='{escape(d['example'])}'>"
        f"{escape(shorten(d['example'], EXAMPLE_WIDTH))}</td></tr>"
        for d in dead
    )
    q_rows = "".join(
        f"<tr data-source='{escape(q['source'])}'><td>{escape(q['source'])}</td>"
        f"<td>{escape(q['stage'])}</td><td class='num'>{q['records_in']}</td>"
        f"<td class='num'>{_pct(q['pass_rate'])}</td>"
        f"<td class='num'>{_pct(q['latest_pass_rate'])}</td>"
        f"<td>{escape(_time(q['latest_window']))}</td></tr>"
        for q in quality
    )
    body = f"""<h1>Operations</h1>
<p class="sub">Lag = end offset − committed offset per partition; seconds = age of the oldest
unconsumed record. Status judged Burrow-style over a sliding window.
<span id="ops-updated"></span></p>
<p id="ops-error" class="error" hidden></p>
<section><h2>Stages</h2>
<table class="stages"><thead><tr><th>Stage</th><th>Group</th><th>Workers</th><th>Status</th>
<th>Lag (records)</th><th>Lag (s)</th><th>Consumed/s</th><th>Arrived/s</th></tr></thead>
<tbody id="stages-body"></tbody></table>
<div class="chart small"><canvas id="lag-chart" aria-label="lag over time"></canvas></div></section>
<section><h2>Lag per partition</h2>
<table class="partitions"><thead><tr><th>Group</th><th>Topic</th><th>Partition</th>
<th>Committed</th><th>End</th><th>Lag</th><th>Lag (s)</th><th>Status</th></tr></thead>
<tbody id="partitions-body"></tbody></table></section>
<section><h2>Dead letters by stage, source and error class</h2>
<table class="dead"><thead><tr><th>Stage</th><th>Source</th><th>Error class</th><th>Count</th>
<th>Last</th><th>Newest reason</th></tr></thead><tbody id="dead-body">{dead_rows}</tbody>
</table>
{"" if dead else '<p class="empty">No dead letters.</p>'}</section>
<section><h2>Quality pass rate per source</h2>
<table class="quality"><thead><tr><th>Source</th><th>Stage</th><th>Records in</th>
<th>Pass rate</th><th>Latest window</th><th>Window start</th></tr></thead>
<tbody id="quality-body">{q_rows}</tbody></table>
{"" if quality else '<p class="empty">No quality reports yet.</p>'}</section>
{json_script("ops-data", snapshot)}"""
    return layout("Operations", body, ("chart.umd.min.js", "ops.js"), active="ops")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def not_found(what: str) -> str:
    return layout("Not found", f"<h1>Not found</h1><p>{escape(what)}</p>")
