// The operations page: renders the server's snapshot, then polls /api/ops at the sampler's
// interval. Values go into data-* attributes too, so tests (and scripts) read numbers, not text.
"use strict";

(function () {
  const first = JSON.parse(document.getElementById("ops-data").textContent);
  const COLORS = { staging: "#4e79a7", features: "#f28e2b", sink: "#59a14f" };
  const fmt = (v, digits = 1) => (v == null ? "-" : Number(v).toFixed(digits));
  const hhmmss = (t) => new Date(t).toISOString().slice(11, 19);
  const EXAMPLE_WIDTH = 100; // as the server renders it (pages.EXAMPLE_WIDTH)
  // Cut at a word boundary with an ellipsis, as the command line does (errors.shorten).
  function shorten(text, width) {
    if (!text || text.length <= width) return text || "";
    let cut = text.slice(0, width - 1);
    const space = cut.lastIndexOf(" ");
    if (space >= width / 2) cut = cut.slice(0, space);
    return cut.replace(/[ ,;:(]+$/, "") + "…";
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function row(cells, data) {
    const tr = document.createElement("tr");
    cells.forEach((c) => tr.appendChild(c));
    Object.assign(tr.dataset, data || {});
    return tr;
  }

  // The lag chart's time axis: a linear scale in epoch milliseconds whose ticks we place
  // ourselves at round times (10:05:00, 10:05:30, ...), so labels are whole steps of the clock
  // and increase left to right; Chart.js's own "nice" steps are decimal (1e8 ms, 5e10 ms) and
  // land on arbitrary times, which modulo a day read as a clock going backwards.
  const SECOND = 1000, MINUTE = 60 * SECOND, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
  const STEPS = [1, 2, 5, 10, 15, 30].map((s) => s * SECOND)
    .concat([1, 2, 5, 10, 15, 30].map((m) => m * MINUTE))
    .concat([1, 2, 3, 6, 12].map((h) => h * HOUR), [DAY, 2 * DAY, 7 * DAY]);
  const MAX_TICKS = 8;
  let axisStep = SECOND; // the ticks last placed: their step, and whether they cross midnight
  let axisDates = false;

  function timeStep(span) {
    return STEPS.find((s) => span / s <= MAX_TICKS) || Math.ceil(span / MAX_TICKS / DAY) * DAY;
  }

  // UTC, like every time on the page; the date too when the axis crosses midnight, so the
  // labels read in order (23:00, 00:00 would look like a clock going back).
  function timeLabel(ms, step, withDate) {
    const iso = new Date(ms).toISOString();
    if (step >= DAY) return iso.slice(5, 10);
    if (withDate) return `${iso.slice(5, 10)} ${iso.slice(11, step >= MINUTE ? 16 : 19)}`;
    if (step >= MINUTE) return iso.slice(11, 16);
    return iso.slice(11, 19);
  }

  const chart = new Chart(document.getElementById("lag-chart"), {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false, parsing: false, maintainAspectRatio: false,
      scales: {
        x: {
          type: "linear",
          afterBuildTicks: (axis) => {
            const span = Math.max(axis.max - axis.min, SECOND);
            const step = timeStep(span);
            const ticks = [];
            for (let t = Math.ceil(axis.min / step) * step; t <= axis.max; t += step) {
              ticks.push({ value: t });
            }
            axis.ticks = ticks;
            axisStep = step;
            const day = (ms) => new Date(ms).toISOString().slice(0, 10);
            axisDates = day(axis.min) !== day(axis.max);
          },
          ticks: {
            autoSkip: false, maxRotation: 0,
            callback: (v) => timeLabel(v, axisStep, axisDates),
          },
        },
        y: { beginAtZero: true, title: { display: true, text: "lag (records)" } },
      },
    },
  });

  // Points of one stage's history: finite, in time order (the axis bounds come from them).
  function lagPoints(history) {
    return (history || [])
      .map(([at, lag]) => ({ x: Number(at) * 1000, y: Number(lag) }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
      .sort((a, b) => a.x - b.x);
  }

  function render(d) {
    const err = document.getElementById("ops-error");
    const problems = [d.error, d.db_error].filter(Boolean);
    err.hidden = problems.length === 0;
    err.textContent = problems.join(" · ");

    const stages = document.getElementById("stages-body");
    stages.replaceChildren(...d.stages.map((s) => row([
      cell(s.stage), cell(s.group), cell(String(s.members), "num"),
      cell(s.status, "status " + s.status.toLowerCase()),
      cell(String(s.lag), "num lag"), cell(fmt(s.lag_seconds), "num"),
      cell(fmt(s.consumed_per_s), "num"), cell(fmt(s.arrived_per_s), "num"),
    ], { stage: s.stage, group: s.group, lag: String(s.lag), lagSeconds: String(s.lag_seconds),
      status: s.status, members: String(s.members) })));

    const parts = document.getElementById("partitions-body");
    parts.replaceChildren(...d.stages.flatMap((s) => s.partitions.map((p) => row([
      cell(s.stage), cell(p.topic), cell(String(p.partition), "num"),
      cell(p.committed == null ? "-" : String(p.committed), "num"), cell(String(p.end), "num"),
      cell(String(p.lag), "num"), cell(fmt(p.lag_seconds), "num"),
      cell(p.status, "status " + p.status.toLowerCase()),
    ], { stage: s.stage, topic: p.topic, partition: String(p.partition), lag: String(p.lag) }))));

    document.getElementById("dead-body").replaceChildren(...d.dead_letters.map((x) => {
      const example = cell(shorten(x.example, EXAMPLE_WIDTH), "reason");
      example.title = x.example; // the whole reason on hover
      return row([
        cell(x.stage), cell(x.source), cell(x.error_class), cell(String(x.count), "num"),
        cell(x.last ? x.last.slice(0, 19).replace("T", " ") : "-"), example,
      ], { stage: x.stage, source: x.source, errorClass: x.error_class,
        count: String(x.count) });
    }));

    document.getElementById("quality-body").replaceChildren(...d.quality.map((q) => row([
      cell(q.source), cell(q.stage), cell(String(q.records_in), "num"),
      cell(q.pass_rate == null ? "-" : fmt(q.pass_rate * 100) + "%", "num"),
      cell(q.latest_pass_rate == null ? "-" : fmt(q.latest_pass_rate * 100) + "%", "num"),
      cell(q.latest_window ? q.latest_window.slice(0, 19).replace("T", " ") : "-"),
    ], { source: q.source, passRate: String(q.pass_rate) })));

    chart.data.datasets = d.stages.map((s) => ({
      label: s.stage, borderColor: COLORS[s.stage], backgroundColor: COLORS[s.stage],
      pointRadius: 2, borderWidth: 2, // a dot shows the first sample, before there is a line
      data: lagPoints(s.history),
    }));
    const xs = chart.data.datasets.flatMap((ds) => ds.data.map((p) => p.x));
    const x = chart.options.scales.x;
    if (xs.length) {
      const lo = Math.min(...xs), hi = Math.max(...xs);
      x.min = lo === hi ? lo - 30 * SECOND : lo; // one sample: a minute around it
      x.max = lo === hi ? hi + 30 * SECOND : hi;
    } else {
      delete x.min;
      delete x.max;
    }
    chart.update("none");

    const upd = document.getElementById("ops-updated");
    upd.dataset.samples = String(d.samples);
    upd.textContent = d.samples ? `Sample ${d.samples}, ${hhmmss(Date.now())} UTC.` : "";
  }

  render(first);
  const every = Math.max(1, first.interval || 3) * 1000;
  async function poll() {
    try {
      const r = await fetch("/api/ops", { cache: "no-store" });
      if (r.ok) render(await r.json());
    } catch (e) {
      document.getElementById("ops-error").hidden = false;
      document.getElementById("ops-error").textContent = "web server unreachable: " + e;
    }
    setTimeout(poll, every);
  }
  setTimeout(poll, every);
  window.oddsflowOps = { chart, render, timeLabel };
})();
