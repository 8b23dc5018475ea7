// The supervisors' experience view: a period's experience report per queue and per agent, the
// exceptions report, CSV downloads and charts (Chart.js, vendored, the global `Chart`).

import { api } from "./api.js";
import { byTestId, h, replace } from "./dom.js";
import { dayAndTime, duration, label } from "./format.js";
import { requireRole, signOut, signOutTo } from "./session.js";

const session = requireRole("supervisor");
const DAY_MS = 24 * 3600 * 1000;

const state = { period: null, byQueue: null, byAgent: null, exceptions: null, charts: [] };

// ---- the period --------------------------------------------------------------------------------

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate());
}

function addDays(date, days) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
}

function fromInput(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d);
}

// Local days, as the supervisor means them: [from, to) in the browser's time zone.
function chosenPeriod(form) {
  const today = startOfDay(new Date());
  switch (form.elements.period.value) {
    case "yesterday":
      return { from: addDays(today, -1), to: today };
    case "week":
      return { from: addDays(today, -6), to: addDays(today, 1) };
    case "custom": {
      const from = form.elements.from.value;
      const to = form.elements.to.value;
      if (!from || !to) throw new Error("Choose both days of the custom period.");
      const period = { from: fromInput(from), to: addDays(fromInput(to), 1) };
      if (period.from >= period.to) throw new Error("The first day must come before the last.");
      return period;
    }
    default:
      return { from: today, to: addDays(today, 1) };
  }
}

function query(period, extra = {}) {
  const params = new URLSearchParams({ from: period.from.toISOString(), to: period.to.toISOString(), ...extra });
  return params.toString();
}

// ---- figures -----------------------------------------------------------------------------------

function count(n) {
  return n === null || n === undefined ? "—" : String(n);
}

function rate(fraction) {
  return fraction === null || fraction === undefined ? "—" : `${Math.round(fraction * 1000) / 10}%`;
}

function per100(value) {
  return value === null || value === undefined ? "—" : (Math.round(value * 10) / 10).toFixed(1);
}

function csat(row) {
  return row.csat_mean === null ? "—" : `${row.csat_mean.toFixed(2)} (${row.csat_count})`;
}

function mood(sentiment) {
  const parts = Object.entries(sentiment || {}).filter(([, n]) => n > 0);
  return parts.length ? parts.map(([k, n]) => `${label(k)} ${n}`).join(", ") : "—";
}

// Columns of both tables: heading, the cell's text, and the calls the figure opens (the filter
// of GET /api/calls, and how many there are), if it opens any.
const COLUMNS = [
  ["Calls", (r) => count(r.calls), (r) => ({ filter: {}, n: r.calls, what: "Calls", testid: "open-calls" })],
  ["Answered", (r) => count(r.answered)],
  ["Abandoned", (r) => `${count(r.abandoned)} (${rate(r.abandon_rate)})`, (r) => ({ filter: { state: "abandoned" }, n: r.abandoned, what: "Abandoned calls", testid: "open-abandoned" })],
  ["Gave up after (median)", (r) => duration(r.abandon_p50_s)],
  ["Service level", (r) => rate(r.service_level)],
  ["Wait median", (r) => duration(r.wait_p50_s)],
  ["Wait 90th pct", (r) => duration(r.wait_p90_s)],
  ["Handle median", (r) => duration(r.handle_p50_s)],
  ["Transfers /100", (r) => per100(r.transfers_per_100)],
  ["Escalations /100", (r) => per100(r.escalations_per_100)],
  ["CSAT", csat],
  ["Had to repeat /100", (r) => per100(r.had_to_repeat_per_100)],
  ["Asked again /100", (r) => per100(r.asked_again_per_100)],
  ["Repeat callers", (r) => count(r.repeat_callers)],
  ["Mood (agents' read)", (r) => mood(r.sentiment)],
];

function renderTotals(total, serviceLevelS) {
  const tiles = [
    ["Calls", count(total.calls), "total-calls"],
    ["Abandoned", `${count(total.abandoned)} · ${rate(total.abandon_rate)}`, "total-abandoned"],
    [`Answered within ${serviceLevelS}s`, rate(total.service_level), "total-service-level"],
    ["Wait median / 90th", `${duration(total.wait_p50_s)} / ${duration(total.wait_p90_s)}`, "total-wait"],
    ["CSAT", csat(total), "total-csat"],
    ["Had to repeat /100", per100(total.had_to_repeat_per_100), "total-repeat"],
  ];
  replace(
    byTestId("totals"),
    tiles.map(([name, value, testid]) =>
      h("div", { class: "figure" }, h("span", { class: "figure-value", testid }, value), h("span", { class: "figure-label" }, name)),
    ),
  );
}

function renderTable(table, report, keyHeading) {
  const head = h("thead", {}, h("tr", {}, h("th", { scope: "col" }, keyHeading), COLUMNS.map(([name]) => h("th", { scope: "col", class: "num" }, name))));
  const rows = report.groups.map((group) => {
    const name = group.name || String(group.key);
    return h(
      "tr",
      { testid: "report-row", dataset: { key: String(group.key) } },
      h("th", { scope: "row" }, name),
      COLUMNS.map(([, cell, opens]) => figureCell(cell(group), opens && opens(group), name, report.group_by === "queue" ? { queue: group.key } : { agent_id: group.key })),
    );
  });
  const total = h("tr", { class: "total" }, h("th", { scope: "row" }, "All"), COLUMNS.map(([, cell, opens]) => figureCell(cell(report.total), opens && opens(report.total), "all queues", {})));
  replace(table, head, h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: COLUMNS.length + 1, class: "muted" }, "No calls in this period.")), total));
}

function renderExceptions(report) {
  const list = byTestId("exceptions");
  byTestId("exceptions-count").textContent = report.groups.length ? String(report.groups.length) : "";
  byTestId("exceptions-empty").hidden = report.groups.length > 0;
  replace(
    list,
    report.groups.map((group) =>
      h(
        "li",
        { class: "exception", testid: "exception-group" },
        h("div", { class: "exception-head" }, h("strong", { testid: "exception-label" }, group.label), " ", h("span", { class: "count", testid: "exception-count" }, String(group.count))),
        h("ul", { class: "examples" }, group.examples.map((words) => h("li", { testid: "exception-example" }, `“${words}”`))),
        h("p", { class: "muted" }, `Ended up in: ${spread(group.queues)} · Resolved: ${spread(group.resolutions)}`),
        h(
          "p",
          { class: "exception-actions" },
          h("button", { type: "button", class: "link", testid: "exception-calls", onclick: () => showCallIds(group.label, group.call_ids) }, `Its ${group.call_ids.length} call${group.call_ids.length === 1 ? "" : "s"}`),
          " · ",
          markButton(group),
          " · ",
          h("button", { type: "button", class: "link", testid: "exception-draft", onclick: () => downloadDraft(group) }, "Download draft intent"),
        ),
      ),
    ),
  );
}

function markButton(group) {
  if (group.marked) {
    return h("span", { class: "marked", testid: "exception-marked" }, "Marked: add to the phone tree");
  }
  const button = h("button", { type: "button", class: "link", testid: "exception-mark" }, "Add to the phone tree");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api("/api/reports/exceptions/marks", { method: "POST", body: { terms: group.terms } });
    } catch (e) {
      // 409: someone marked it meanwhile, which is what was asked.
      if (e.status !== 409) {
        button.disabled = false;
        showError(e.message);
        return;
      }
    }
    group.marked = true;
    button.replaceWith(markButton(group));
  });
  return button;
}

async function downloadDraft(group) {
  try {
    await download(`/api/reports/exceptions/draft?${query(state.period, { label: group.label })}`, `intent-${group.terms.join("_")}.yaml`, "text/yaml");
  } catch (e) {
    showError(e.message);
  }
}

function showError(message) {
  const error = byTestId("report-error");
  error.textContent = message;
  error.hidden = false;
}

function spread(counts) {
  const parts = Object.entries(counts || {});
  return parts.length ? parts.map(([k, n]) => `${label(k)} ${n}`).join(", ") : "—";
}

// ---- the calls behind a figure -----------------------------------------------------------------

function renderCalls(title, calls) {
  byTestId("calls-title").textContent = title;
  const head = h("thead", {}, h("tr", {}, ["Call", "Started", "State", "Queue", "Intent", "Escalation", "CSAT"].map((t) => h("th", { scope: "col" }, t))));
  const rows = calls.map((c) =>
    h(
      "tr",
      { testid: "call-row", dataset: { callId: String(c.id) } },
      h("td", {}, `#${c.id}`),
      h("td", {}, dayAndTime(c.created_at)),
      h("td", {}, label(c.state)),
      h("td", {}, label(c.queue)),
      h("td", {}, label(c.intent)),
      h("td", {}, label(c.escalation_reason)),
      h("td", {}, count(c.csat)),
    ),
  );
  replace(byTestId("calls"), head, h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No calls."))));
  const panel = byTestId("calls-panel");
  panel.hidden = false;
  panel.scrollIntoView({ block: "start" });
}

// A figure that opens the calls behind it is a button; any other, its text.
function figureCell(text, opens, name, by) {
  if (!opens || !(opens.n > 0)) return h("td", { class: "num" }, text);
  const title = `${opens.what} of ${by.queue ? label(by.queue) : name}`;
  const onclick = () => showGroupCalls(title, { ...by, ...opens.filter });
  return h("td", { class: "num" }, h("button", { type: "button", class: "link", testid: opens.testid, onclick }, text));
}

// The calls behind a figure: first queued within the period, as the report counts them (the
// newest 500), of a queue or an agent (or all), in a state if the figure says so.
async function showGroupCalls(title, by) {
  const { from, to } = state.period;
  const params = new URLSearchParams({ ...by, from: from.toISOString(), to: to.toISOString() });
  const calls = await api(`/api/calls?${params}`);
  renderCalls(title, calls);
}

async function showCallIds(title, ids) {
  const calls = await Promise.all(ids.slice(0, 50).map((id) => api(`/api/calls/${id}`)));
  renderCalls(`Calls of “${title}”`, calls);
}

// ---- charts ------------------------------------------------------------------------------------

function drawCharts(byQueue) {
  for (const chart of state.charts) chart.destroy();
  state.charts = [];
  const Chart = window.Chart;
  if (!Chart) return;
  // The height follows the width: sized from its container instead, a canvas grows the figure
  // it sits in, which grows the canvas again, and the page never stops getting longer.
  const common = { animation: false, responsive: true, maintainAspectRatio: true, aspectRatio: 2 };
  const hours = byQueue.by_hour || [];
  state.charts.push(
    new Chart(byTestId("chart-hours"), {
      type: "bar",
      data: {
        labels: hours.map((row) => dayAndTime(row.at)),
        datasets: [
          { label: "Answered", data: hours.map((row) => row.answered), backgroundColor: "#3b6ea5", stack: "calls", yAxisID: "y" },
          { label: "Abandoned", data: hours.map((row) => row.abandoned), backgroundColor: "#c2571a", stack: "calls", yAxisID: "y" },
          { label: "Median wait (s)", type: "line", data: hours.map((row) => row.wait_p50_s), borderColor: "#2f7d4f", backgroundColor: "#2f7d4f", pointRadius: 0, spanGaps: false, yAxisID: "wait" },
        ],
      },
      options: {
        ...common,
        aspectRatio: 4,
        scales: {
          x: { stacked: true, ticks: { autoSkip: true, maxRotation: 0 } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "calls" } },
          wait: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "seconds" } },
        },
      },
    }),
  );
  const reasons = Object.entries(byQueue.total.escalation_reasons || {});
  state.charts.push(
    new Chart(byTestId("chart-reasons"), {
      type: "bar",
      data: { labels: reasons.map(([reason]) => label(reason)), datasets: [{ label: "Escalations", data: reasons.map(([, n]) => n), backgroundColor: "#c2571a" }] },
      options: { ...common, indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    }),
  );
  const dist = byQueue.total.csat_distribution || {};
  state.charts.push(
    new Chart(byTestId("chart-csat"), {
      type: "bar",
      data: { labels: ["1", "2", "3", "4", "5"], datasets: [{ label: "Answers", data: ["1", "2", "3", "4", "5"].map((k) => dist[k] || 0), backgroundColor: "#3b6ea5" }] },
      options: { ...common, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    }),
  );
  const groups = byQueue.groups;
  state.charts.push(
    new Chart(byTestId("chart-moves"), {
      type: "bar",
      data: {
        labels: groups.map((g) => label(g.key)),
        datasets: [
          { label: "Escalations /100", data: groups.map((g) => g.escalations_per_100 || 0), backgroundColor: "#c2571a" },
          { label: "Transfers /100", data: groups.map((g) => g.transfers_per_100 || 0), backgroundColor: "#7a8a99" },
        ],
      },
      options: { ...common, scales: { y: { beginAtZero: true } } },
    }),
  );
}

// ---- loading -----------------------------------------------------------------------------------

async function load(form) {
  const error = byTestId("report-error");
  error.hidden = true;
  let period;
  try {
    period = chosenPeriod(form);
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
    return;
  }
  state.period = period;
  byTestId("period-label").textContent = `${period.from.toLocaleString()} to ${period.to.toLocaleString()}`;
  try {
    const [byQueue, byAgent, exceptions] = await Promise.all([
      api(`/api/reports/experience?${query(period, { group_by: "queue" })}`),
      api(`/api/reports/experience?${query(period, { group_by: "agent" })}`),
      api(`/api/reports/exceptions?${query(period)}`),
    ]);
    Object.assign(state, { byQueue, byAgent, exceptions });
    renderTotals(byQueue.total, byQueue.service_level_s);
    renderTable(byTestId("by-queue"), byQueue, "Queue");
    renderTable(byTestId("by-agent"), byAgent, "Agent");
    renderExceptions(exceptions);
    drawCharts(byQueue);
    document.body.dataset.loaded = "true";
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  }
}

// The CSV and YAML routes need the bearer token, which a plain link cannot send: fetched, then saved.
async function download(path, name, type = "text/csv") {
  const text = await api(path);
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- start -------------------------------------------------------------------------------------

if (session) {
  const form = byTestId("period-form");
  form.addEventListener("change", () => {
    const custom = form.elements.period.value === "custom";
    form.elements.from.disabled = !custom;
    form.elements.to.disabled = !custom;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(form);
  });
  byTestId("csv-queue").addEventListener("click", () => download(`/api/reports/experience.csv?${query(state.period, { group_by: "queue" })}`, "tellonce-experience-queue.csv"));
  byTestId("csv-agent").addEventListener("click", () => download(`/api/reports/experience.csv?${query(state.period, { group_by: "agent" })}`, "tellonce-experience-agent.csv"));
  byTestId("csv-exceptions").addEventListener("click", () => download(`/api/reports/exceptions.csv?${query(state.period)}`, "tellonce-exceptions.csv"));
  byTestId("signout").addEventListener("click", async () => {
    await signOut();
    signOutTo("signed_out");
  });
  load(form);
}
