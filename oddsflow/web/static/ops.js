// The operations page: renders the server's snapshot, then polls /api/ops at the sampler's
// interval. Values go into data-* attributes too, so tests (and scripts) read numbers, not text.
"use strict";

(function () {
  const first = JSON.parse(document.getElementById("ops-data").textContent);
  const COLORS = { staging: "#4e79a7", features: "#f28e2b", sink: "#59a14f" };
  const fmt = (v, digits = 1) => (v == null ? "-" : Number(v).toFixed(digits));
  const hhmmss = (t) => new Date(t).toISOString().slice(11, 19);

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

  const chart = new Chart(document.getElementById("lag-chart"), {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false, parsing: false, maintainAspectRatio: false,
      scales: {
        x: { type: "linear", ticks: { callback: (v) => hhmmss(v), maxTicksLimit: 8 } },
        y: { beginAtZero: true, title: { display: true, text: "lag (records)" } },
      },
    },
  });

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

    document.getElementById("dead-body").replaceChildren(...d.dead_letters.map((x) => row([
      cell(x.stage), cell(x.error_class), cell(x.reason), cell(String(x.count), "num"),
      cell(x.last ? x.last.slice(0, 19).replace("T", " ") : "-"),
    ], { stage: x.stage, reason: x.reason, count: String(x.count) })));

    document.getElementById("quality-body").replaceChildren(...d.quality.map((q) => row([
      cell(q.source), cell(q.stage), cell(String(q.records_in), "num"),
      cell(q.pass_rate == null ? "-" : fmt(q.pass_rate * 100) + "%", "num"),
      cell(q.latest_pass_rate == null ? "-" : fmt(q.latest_pass_rate * 100) + "%", "num"),
      cell(q.latest_window ? q.latest_window.slice(0, 19).replace("T", " ") : "-"),
    ], { source: q.source, passRate: String(q.pass_rate) })));

    chart.data.datasets = d.stages.map((s) => ({
      label: s.stage, borderColor: COLORS[s.stage], backgroundColor: COLORS[s.stage],
      pointRadius: 0, borderWidth: 2,
      data: s.history.map(([at, lag]) => ({ x: at * 1000, y: lag })),
    }));
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
  window.oddsflowOps = { chart, render };
})();
