// The game page: one Chart.js chart per market, fed first from the server-rendered data, then
// live from /events/<game> (server-sent events). Every record is keyed by its identity, so the
// backlog the server replays on connect and the rows already rendered never count twice.
"use strict";

(function () {
  const game = JSON.parse(document.getElementById("game-data").textContent);
  const MARKETS = ["moneyline", "spread", "total"];
  const SIDE = { moneyline: "home", spread: "home", total: "over" };
  const UP = { home: true, over: true, away: false, under: false };
  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  const SIGNAL_STYLE = {
    steam: { label: "steam", color: "#ff7f0e", style: "triangle", radius: 9 },
    sharp_action: { label: "sharp action", color: "#9467bd", style: "rectRot", radius: 8 },
    reverse_line_movement: { label: "reverse line movement", color: "#d62728", style: "rect", radius: 7 },
  };

  const state = {};
  for (const m of MARKETS) {
    state[m] = { books: new Map(), consensus: [], steam: [], sharp: [], seen: new Set() };
  }
  const ms = (iso) => Date.parse(iso);
  const hhmm = (t) => new Date(t).toISOString().slice(11, 16);

  function american(p) {
    if (!(p > 0 && p < 1)) return "-";
    return p >= 0.5 ? String(-Math.round((100 * p) / (1 - p))) : "+" + Math.round((100 * (1 - p)) / p);
  }

  function insertSorted(arr, point) {
    let i = arr.length;
    while (i > 0 && arr[i - 1].x > point.x) i--;
    arr.splice(i, 0, point);
  }

  // -- records into state (each returns the market it touched, or null) ---------------------
  function addLine(r) {
    if (!state[r.market] || r.side !== SIDE[r.market]) return null;
    const s = state[r.market];
    const key = `L|${r.book}|${r.event_time}`;
    if (s.seen.has(key)) return null;
    s.seen.add(key);
    const prob = r.novig_prob ?? r.implied_prob;
    if (!s.books.has(r.book)) s.books.set(r.book, []);
    insertSorted(s.books.get(r.book), {
      x: ms(r.event_time), y: prob * 100, price: r.price_american, line: r.line,
    });
    return r.market;
  }

  function addConsensus(r) {
    if (!state[r.market] || r.side !== SIDE[r.market]) return null;
    const s = state[r.market];
    const key = `C|${r.event_time}`;
    if (s.seen.has(key)) return null;
    s.seen.add(key);
    insertSorted(s.consensus, {
      x: ms(r.event_time), y: r.median_novig_prob * 100, books: r.book_count,
      best: r.best_price_american, bestBook: r.best_book, line: r.median_line,
    });
    return r.market;
  }

  function addSteam(r) {
    const s = state[r.market];
    if (!s || s.seen.has("S|" + r.move_id)) return null;
    s.seen.add("S|" + r.move_id);
    s.steam.push({ ...r, x: ms(r.detected_at) });
    listSignal(r.market, "steam", r.move_id, ms(r.detected_at),
      `steam toward ${r.direction} · ${r.books.length} books (${r.books.join(", ")}) · ` +
      `${r.magnitude} ${r.unit} · first ${r.first_mover}`);
    return r.market;
  }

  function addSharp(r) {
    const s = state[r.market];
    if (!s || s.seen.has("X|" + r.signal_id)) return null;
    s.seen.add("X|" + r.signal_id);
    s.sharp.push({ ...r, x: ms(r.event_time) });
    const what = r.signal_type === "reverse_line_movement" ? "RLM" : "sharp action";
    const money = r.money_pct == null ? "" : `, money ${r.money_pct}%`;
    listSignal(r.market, r.signal_type, r.signal_id, ms(r.event_time),
      `${what} on ${r.side} (${r.tier}) · tickets ${r.tickets_pct}%${money}`);
    return r.market;
  }

  function listSignal(market, kind, id, t, text) {
    const ul = document.getElementById("signals-" + market);
    const li = document.createElement("li");
    li.className = kind;
    li.dataset.id = id;
    li.dataset.t = String(t);
    li.textContent = `${hhmm(t)} UTC — ${text}`;
    const after = [...ul.children].find((c) => Number(c.dataset.t) > t);
    ul.insertBefore(li, after || null);
  }

  // -- markers sit on the consensus (or the books' mean) at their time -----------------------
  function valueAt(market, t) {
    const s = state[market];
    let v = null;
    for (const p of s.consensus) { if (p.x <= t) v = p.y; else break; }
    if (v !== null) return v;
    const vals = [];
    for (const pts of s.books.values()) {
      let last = pts.length ? pts[0].y : null;
      for (const p of pts) { if (p.x <= t) last = p.y; else break; }
      if (last !== null) vals.push(last);
    }
    return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : 50;
  }

  // -- charts ---------------------------------------------------------------------------------
  const charts = {};
  function build(market) {
    const ctx = document.getElementById("chart-" + market);
    charts[market] = new Chart(ctx, {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", ticks: { callback: (v) => hhmm(v), maxTicksLimit: 10 },
            title: { display: true, text: "event time (UTC)" } },
          y: { title: { display: true, text: `${SIDE[market]} no-vig probability (%)` } },
        },
        plugins: {
          legend: { labels: { usePointStyle: true, boxHeight: 8 } },
          tooltip: { callbacks: { label: tooltipLabel } },
        },
      },
    });
  }

  function tooltipLabel(item) {
    const p = item.raw;
    const name = item.dataset.label;
    if (p.move) return `steam toward ${p.move.direction}: ${p.move.books.join(", ")}`;
    if (p.signal) return `${p.signal.signal_type} ${p.signal.side} (${p.signal.tier})`;
    if (p.price !== undefined) {
      const line = p.line == null ? "" : ` line ${p.line}`;
      return `${name}: ${p.price > 0 ? "+" : ""}${p.price}${line} (${p.y.toFixed(1)}%)`;
    }
    return `${name}: ${p.y.toFixed(1)}% (fair ${american(p.y / 100)}, ${p.books} books)`;
  }

  // every chart spans the same time range, so the markets line up one above the other
  function span() {
    let lo = Infinity, hi = -Infinity;
    for (const m of MARKETS) {
      const s = state[m];
      for (const pts of [...s.books.values(), s.consensus]) {
        if (pts.length) { lo = Math.min(lo, pts[0].x); hi = Math.max(hi, pts[pts.length - 1].x); }
      }
    }
    return lo <= hi ? [lo, hi] : [undefined, undefined];
  }

  function render(market) {
    const s = state[market];
    const [lo, hi] = span();
    charts[market].options.scales.x.min = lo;
    charts[market].options.scales.x.max = hi;
    const sets = [];
    let i = 0;
    for (const [book, pts] of [...s.books.entries()].sort()) {
      const color = PALETTE[i++ % PALETTE.length];
      // a price holds until the book changes it: draw it on to the end of the range
      const last = pts[pts.length - 1];
      const data = hi > last.x ? [...pts, { ...last, x: hi, held: true }] : pts;
      sets.push({ label: book, kind: "book", data, borderColor: color, backgroundColor: color,
        stepped: true, borderWidth: 1.5, pointRadius: 0 });
    }
    sets.push({ label: "consensus", kind: "consensus", data: s.consensus, borderColor: "#f5f5f5",
      backgroundColor: "#f5f5f5", borderWidth: 3, borderDash: [6, 3], stepped: true, pointRadius: 0 });
    const st = SIGNAL_STYLE.steam;
    sets.push({
      label: st.label, kind: "steam", showLine: false, borderColor: st.color, backgroundColor: st.color,
      pointStyle: st.style, pointRadius: st.radius, pointHoverRadius: st.radius + 2,
      pointRotation: s.steam.map((m) => (UP[m.direction] ? 0 : 180)),
      data: s.steam.map((m) => ({ x: m.x, y: valueAt(market, m.x), move: m, id: m.move_id })),
    });
    for (const type of ["reverse_line_movement", "sharp_action"]) {
      const sg = SIGNAL_STYLE[type];
      sets.push({
        label: sg.label, kind: type, showLine: false, borderColor: sg.color, backgroundColor: sg.color,
        pointStyle: sg.style, pointRadius: sg.radius,
        data: s.sharp.filter((x) => x.signal_type === type)
          .map((x) => ({ x: x.x, y: valueAt(market, x.x), signal: x, id: x.signal_id })),
      });
    }
    charts[market].data.datasets = sets;
    charts[market].update("none");
    const counts = document.querySelector(`.counts[data-market="${market}"]`);
    const rlm = s.sharp.filter((x) => x.signal_type === "reverse_line_movement").length;
    counts.dataset.steam = String(s.steam.length);
    counts.dataset.rlm = String(rlm);
    counts.dataset.sharp = String(s.sharp.length - rlm);
    counts.textContent = ` steam ${s.steam.length} · RLM ${rlm} · sharp ${s.sharp.length - rlm}`;
  }

  // -- first paint from the server, then live ------------------------------------------------
  game.lines.forEach(addLine);
  game.consensus.forEach(addConsensus);
  game.steam.forEach(addSteam);
  game.sharp.forEach(addSharp);
  MARKETS.forEach((m) => { build(m); render(m); });

  const dirty = new Set();
  let scheduled = false;
  function touched(market) {
    if (!market) return;
    dirty.add(market);
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      MARKETS.forEach(render);  // the shared time range may have grown
      dirty.clear();
    });
  }

  const live = document.getElementById("live");
  const source = new EventSource("/events/" + encodeURIComponent(game.game_id));
  const handlers = { line: addLine, consensus: addConsensus, steam: addSteam, sharp: addSharp };
  let received = 0;
  for (const [event, add] of Object.entries(handlers)) {
    source.addEventListener(event, (e) => {
      received += 1;
      live.dataset.received = String(received);
      touched(add(JSON.parse(e.data)));
    });
  }
  source.addEventListener("hello", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  source.addEventListener("reload", () => location.reload());
  source.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };

  window.oddsflow = { game, state, charts, source };
})();
