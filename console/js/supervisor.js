// The supervisor's wall screen: queues, escalations to hand out, agents, the phone tree, today.

import { api } from "./api.js";
import { byTestId, h, replace, toast } from "./dom.js";
import { clock, duration, label, parseTime, serverNow } from "./format.js";
import { Live, mountConnectionIndicator } from "./live.js";
import { callerName, identityBadge, renderScreenPop } from "./screenpop.js";
import { requireRole, signOut, signOutTo } from "./session.js";
import { since, startTicking } from "./ticker.js";

const session = requireRole("supervisor");
const ON_A_CALL = new Set(["busy", "wrapup"]);

const state = {
  queues: [],
  queuesAt: serverNow(),
  escalations: [],
  agents: new Map(),
  ivr: new Map(),
  calls: [],
  chosen: new Map(),
};

const el = {
  escalations: byTestId("escalations"),
  escalationsEmpty: byTestId("escalations-empty"),
  escalationsCount: byTestId("escalations-count"),
  queues: byTestId("queues"),
  agents: byTestId("agents"),
  agentsCount: byTestId("agents-count"),
  ivr: byTestId("ivr-calls"),
  ivrEmpty: byTestId("ivr-empty"),
  ivrCount: byTestId("ivr-count"),
};

// ---- queues ----------------------------------------------------------------------------------

// Why callers wait in a queue (queue.stats `reason`), in the wall's words.
const WAIT_REASONS = {
  no_agents: "Nobody with this skill is signed in",
  all_busy: "Everyone with this skill is on a call, wrapping up or away",
  rejected: "Rejected by the agents available: offered to them again shortly",
};

function renderQueues() {
  const at = new Date(state.queuesAt).toISOString();
  const order = ["escalations", "billing", "cards", "loans"];
  const queues = [...state.queues].sort(
    (a, b) => ((order.indexOf(a.name) + 99) % 99) - ((order.indexOf(b.name) + 99) % 99) || a.name.localeCompare(b.name),
  );
  replace(
    el.queues.tBodies[0],
    queues.map((q) =>
      h(
        "tr",
        { testid: "queue-row", dataset: { queue: q.name }, class: q.waiting && !q.agents_available ? "alert" : null },
        h(
          "th",
          { scope: "row" },
          label(q.name),
          q.reason ? h("div", { class: "sub queue-reason", testid: "queue-reason", dataset: { reason: q.reason } }, WAIT_REASONS[q.reason] || label(q.reason)) : null,
        ),
        h("td", { class: "num big", testid: "queue-waiting" }, String(q.waiting)),
        h(
          "td",
          { class: `num${q.longest_wait_s >= 60 ? " late" : ""}`, testid: "queue-longest-wait" },
          q.waiting ? since(at, { base: q.longest_wait_s || 0 }) : "—",
        ),
        h("td", { class: "num", testid: "queue-available" }, String(q.agents_available)),
        h("td", { class: "num", testid: "queue-signed-in" }, String(q.agents_signed_in)),
      ),
    ),
  );
  const waiting = state.queues.reduce((sum, q) => sum + (q.waiting || 0), 0);
  byTestId("figure-waiting").textContent = String(waiting);
}

// ---- escalations -----------------------------------------------------------------------------

function agentName(id) {
  return state.agents.get(id)?.display_name || (id ? `agent ${id}` : null);
}

function escalationAgent(e) {
  if (e.agent && typeof e.agent === "object") return { id: e.agent.id, name: e.agent.display_name };
  const id = e.agent_id ?? null;
  return id ? { id, name: agentName(id) } : null;
}

function agentOptions(current) {
  const agents = [...state.agents.values()].filter((a) => a.status && a.status !== "offline");
  agents.sort(
    (a, b) =>
      Number(b.skills?.includes("escalations")) - Number(a.skills?.includes("escalations")) ||
      Number(b.status === "available") - Number(a.status === "available") ||
      a.display_name.localeCompare(b.display_name),
  );
  return agents.map((a) => ({
    value: String(a.id),
    text: `${a.display_name} — ${label(a.status)}${a.skills?.length ? ` · ${a.skills.map(label).join(", ")}` : ""}`,
    disabled: ON_A_CALL.has(a.status) || a.id === current,
  }));
}

const rows = new Map();

function escalationWait(e) {
  if (e.state === "connected") {
    return h("span", { class: "muted" }, typeof e.wait_s === "number" ? `answered after ${duration(e.wait_s)}` : "answered");
  }
  // The caller's whole wait, over every queue, ticking on.
  if (e.waiting_since) return since(e.waiting_since);
  return typeof e.wait_s === "number" ? duration(e.wait_s) : "—";
}

function buildRow(e) {
  const selectId = `assign-${e.id}`;
  const select = h("select", { id: selectId, testid: "escalation-agent-select" });
  select.addEventListener("change", () => state.chosen.set(e.id, select.value));
  const button = h("button", { type: "button", class: "primary", testid: "escalation-assign" }, "Assign");
  button.addEventListener("click", () => assign(e.id, select.value));
  const details = h(
    "button",
    { type: "button", class: "ghost-dark", testid: "escalation-details", "aria-label": `Details of call ${e.id}` },
    "Details",
  );
  details.addEventListener("click", () => showCall(e.id));
  const row = {
    tr: h("li", { class: "esc-item", testid: "escalation-row", dataset: { callId: e.id } }),
    reason: h("div", { class: "esc-reason" }),
    caller: h("div", { class: "esc-caller", testid: "escalation-customer" }),
    wait: h("div", { class: "esc-wait", testid: "escalation-wait" }),
    agent: h("div", { class: "esc-agent", testid: "escalation-agent" }),
    label: h("label", { for: selectId, class: "sr-only" }, `Agent for call ${e.id}`),
    select,
    button,
    optionsKey: null,
  };
  row.tr.append(
    h("div", { class: "esc-top" }, h("div", { class: "esc-what" }, row.reason, row.caller), row.wait),
    h("div", { class: "esc-bottom" }, row.agent, h("div", { class: "assign-box" }, details, row.label, select, button)),
  );
  return row;
}

function updateRow(row, e) {
  const agent = escalationAgent(e);
  row.tr.dataset.state = e.state || "";
  row.tr.dataset.agentId = agent?.id ?? "";
  replace(
    row.reason,
    h("span", { class: "esc-reason-text", testid: "escalation-reason" }, label(e.reason || e.escalation_reason)),
    h("span", { class: "muted small" }, ` · call #${e.id}`),
    e.utterance ? h("div", { class: "quote", testid: "escalation-utterance" }, `“${e.utterance}”`) : null,
  );
  replace(
    row.caller,
    h("strong", {}, callerName(e)),
    " ",
    identityBadge(e, { compact: true }),
    e.customer?.segment && e.customer.segment !== "standard" ? [" ", h("span", { class: `badge badge-${e.customer.segment}` }, label(e.customer.segment))] : null,
    h("span", { class: "sub" }, e.customer?.account_number ? ` acct ${e.customer.account_number}` : ` ${e.caller_number || ""}`),
  );
  replace(row.wait, escalationWait(e));
  replace(
    row.agent,
    agent
      ? [
          h("span", { class: "strong", testid: "escalation-agent-name" }, agent.name),
          h("span", { class: "sub" }, e.state === "connected" ? " on the call" : e.state === "offered" ? " offered, not yet accepted" : ` ${label(e.state)}`),
        ]
      : h("span", { class: "muted", testid: "escalation-agent-name" }, "Unassigned"),
  );
  const connected = e.state === "connected";
  const options = agentOptions(agent?.id);
  const key = JSON.stringify(options);
  if (key !== row.optionsKey && document.activeElement !== row.select) {
    row.optionsKey = key;
    const wanted = state.chosen.get(e.id) || row.select.value;
    replace(
      row.select,
      h("option", { value: "" }, options.length ? (agent ? "Reassign to…" : "Assign to…") : "No agent signed in"),
      options.map((o) => h("option", { value: o.value, disabled: o.disabled }, o.text)),
    );
    if (options.some((o) => o.value === wanted && !o.disabled)) row.select.value = wanted;
  }
  row.select.disabled = connected;
  row.button.disabled = connected;
  row.button.hidden = connected;
  row.select.hidden = connected;
  row.button.textContent = agent ? "Reassign" : "Assign";
  row.button.setAttribute("aria-label", `${agent ? "Reassign" : "Assign"} call ${e.id}`);
}

function renderEscalations() {
  const order = [...state.escalations].sort(
    (a, b) => (parseTime(a.queued_at)?.getTime() ?? 0) - (parseTime(b.queued_at)?.getTime() ?? 0),
  );
  const tbody = el.escalations;
  const seen = new Set();
  for (const e of order) {
    seen.add(e.id);
    let row = rows.get(e.id);
    if (!row) {
      row = buildRow(e);
      rows.set(e.id, row);
    }
    updateRow(row, e);
    tbody.appendChild(row.tr);
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      rows.delete(id);
      state.chosen.delete(id);
    }
  }
  el.escalationsEmpty.hidden = order.length > 0;
  el.escalations.hidden = order.length === 0;
  el.escalationsCount.textContent = order.length ? String(order.length) : "";
}

async function assign(callId, agentId) {
  if (!agentId) {
    toast("Choose an agent first.", "warn");
    rows.get(callId)?.select.focus();
    return;
  }
  const name = agentName(Number(agentId));
  try {
    await api(`/api/calls/${callId}/assign`, { method: "POST", body: { agent_id: Number(agentId) } });
    toast(`Call #${callId} offered to ${name}.`);
    // Clear the choice just used, not one made while the request was on its way.
    const row = rows.get(callId);
    if (state.chosen.get(callId) === agentId) state.chosen.delete(callId);
    if (row && row.select.value === agentId) row.select.value = "";
  } catch (err) {
    toast(`Could not assign call #${callId} to ${name}: ${err.message}`, "error");
  }
  refreshSoon();
}

// ---- one call in full: the same screen pop the agent sees -------------------------------------

const dialog = byTestId("call-dialog");
byTestId("call-dialog-close").addEventListener("click", () => dialog.close());

async function unlock(customer, callId) {
  try {
    await api(`/api/customers/${customer.id}/unlock`, { method: "POST" });
    toast(`${customer.name} can verify again.`, "ok");
    await showCall(callId);
  } catch (err) {
    toast(`Could not unlock ${customer.name}: ${err.message}`, "error");
  }
}

// A waiting call, or one on a call with an agent, can be given to an agent or moved to a queue.
const MOVABLE = new Set(["queued", "offered", "connected"]);

function renderCallActions(call) {
  const box = byTestId("call-actions");
  box.hidden = !MOVABLE.has(call.state);
  if (box.hidden) return;
  const agents = byTestId("call-assign-agent");
  replace(
    agents,
    h("option", { value: "" }, "an agent…"),
    agentOptions(call.agent_id).map((o) => h("option", { value: o.value, disabled: o.disabled }, o.text)),
  );
  const queues = byTestId("call-move-queue");
  const names = state.queues.map((q) => q.name).filter((n) => call.state === "connected" || n !== call.queue);
  replace(queues, h("option", { value: "" }, "a queue…"), names.map((n) => h("option", { value: n }, label(n))));
  byTestId("call-assign").onclick = () => moveCall(call, { agent_id: agents.value }, agents);
  byTestId("call-move").onclick = () => moveCall(call, { queue: queues.value }, queues);
}

async function moveCall(call, target, select) {
  if (!target.agent_id && !target.queue) {
    toast(target.queue === undefined ? "Choose an agent first." : "Choose a queue first.", "warn");
    select.focus();
    return;
  }
  try {
    if (target.agent_id) {
      await api(`/api/calls/${call.id}/assign`, { method: "POST", body: { agent_id: Number(target.agent_id) } });
      toast(`Call #${call.id} offered to ${agentName(Number(target.agent_id))}.`);
    } else {
      await api(`/api/calls/${call.id}/transfer`, { method: "POST", body: { queue: target.queue } });
      toast(`Call #${call.id} moved to ${label(target.queue)}.`);
    }
    dialog.close();
    refreshSoon();
  } catch (err) {
    toast(`Could not move call #${call.id}: ${err.message}`, "error");
  }
}

async function showCall(callId) {
  try {
    const call = await api(`/api/calls/${callId}`);
    byTestId("call-dialog-title").textContent = `Call #${call.id} · ${label(call.state)}`;
    renderCallActions(call);
    replace(byTestId("call-dialog-body"), renderScreenPop(call, { onUnlock: (customer) => unlock(customer, callId) }));
    if (!dialog.open) dialog.showModal();
  } catch (err) {
    toast(`Could not read call #${callId}: ${err.message}`, "error");
  }
}

// ---- agents ----------------------------------------------------------------------------------

const STATUS_ORDER = ["available", "offered", "busy", "wrapup", "away", "offline"];

function renderAgents() {
  const agents = [...state.agents.values()].sort(
    (a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) || a.display_name.localeCompare(b.display_name),
  );
  const activeCall = new Map();
  for (const c of state.calls) {
    if (c.agent_id && ["offered", "connected", "wrapup"].includes(c.state)) activeCall.set(c.agent_id, c);
  }
  replace(
    el.agents,
    agents.map((a) => {
      const call = activeCall.get(a.id);
      return h(
        "li",
        { testid: "agent-row", dataset: { agentId: a.id, status: a.status }, class: "agent-item" },
        h("span", { class: "status-dot", dataset: { status: a.status }, "aria-hidden": "true" }),
        h(
          "div",
          { class: "agent-who" },
          h("div", { class: "strong", testid: "agent-row-name" }, a.display_name),
          h("div", { class: "sub" }, (a.skills || []).map(label).join(", ") || "no skills"),
        ),
        h(
          "div",
          { class: "agent-state" },
          h("span", { class: "badge", dataset: { status: a.status }, testid: "agent-status" }, label(a.status)),
          call
            ? h(
                "div",
                { class: "sub" },
                `call #${call.id} · ${label(call.queue)} `,
                h(
                  "button",
                  { type: "button", class: "link small", testid: "agent-call-details", "aria-label": `Details of call ${call.id}`, onclick: () => showCall(call.id) },
                  "Details",
                ),
              )
            : null,
        ),
      );
    }),
  );
  const signedIn = agents.filter((a) => a.status !== "offline").length;
  el.agentsCount.textContent = `${signedIn} signed in of ${agents.length}`;
}

// ---- waiting calls (the escalations have their own list) ----------------------------------------

function renderWaiting() {
  const waiting = state.calls
    .filter((c) => (c.state === "queued" || c.state === "offered") && c.queue !== "escalations")
    .sort((a, b) => (parseTime(a.waiting_since)?.getTime() ?? 0) - (parseTime(b.waiting_since)?.getTime() ?? 0));
  replace(
    byTestId("waiting-calls"),
    waiting.map((c) =>
      h(
        "li",
        { testid: "waiting-row", dataset: { callId: c.id, queue: c.queue || "" }, class: "waiting-item" },
        h(
          "div",
          { class: "waiting-who" },
          h("div", { class: "strong" }, callerName(c)),
          h(
            "div",
            { class: "sub" },
            label(c.queue),
            c.state === "offered" && c.agent_id ? ` · offered to ${agentName(c.agent_id)}` : "",
          ),
        ),
        h(
          "div",
          { class: "waiting-time" },
          c.waiting_since ? since(c.waiting_since, { class: "num strong", testid: "waiting-time" }) : "—",
          h(
            "button",
            { type: "button", class: "link small", testid: "waiting-details", "aria-label": `Details of call ${c.id}`, onclick: () => showCall(c.id) },
            "Details",
          ),
        ),
      ),
    ),
  );
  byTestId("waiting-empty").hidden = waiting.length > 0;
  byTestId("waiting-count").textContent = waiting.length ? String(waiting.length) : "";
}

// ---- phone tree ------------------------------------------------------------------------------

function renderIvr() {
  const calls = [...state.ivr.values()].sort(
    (a, b) => (parseTime(a.created_at)?.getTime() ?? 0) - (parseTime(b.created_at)?.getTime() ?? 0),
  );
  replace(
    el.ivr,
    calls.map((c) => {
      const path = c.ivr_path || [];
      const last = path[path.length - 1];
      return h(
        "li",
        { testid: "ivr-row", dataset: { callId: c.id }, class: "ivr-item" },
        h(
          "div",
          { class: "ivr-who" },
          h("div", { class: "strong" }, c.customer?.name || c.caller_number || "Unknown number"),
          h(
            "div",
            { class: "sub" },
            c.customer ? `${c.caller_number} · ` : "",
            c.identity?.verified ? "verified" : c.customer ? "number known, not verified" : "unknown caller",
            c.language ? ` · ${label(c.language)}` : "",
          ),
          last ? h("div", { class: "sub" }, `at ${label(last.node)} (${path.length} step${path.length > 1 ? "s" : ""})`) : null,
        ),
        h(
          "div",
          { class: "ivr-time" },
          since(c.created_at, { class: "num strong", testid: "ivr-time" }),
          h("div", { class: "sub" }, `since ${clock(c.created_at)}`),
          h(
            "button",
            { type: "button", class: "link small", testid: "ivr-details", "aria-label": `Details of call ${c.id}`, onclick: () => showCall(c.id) },
            "Details",
          ),
        ),
      );
    }),
  );
  el.ivrEmpty.hidden = calls.length > 0;
  el.ivrCount.textContent = calls.length ? String(calls.length) : "";
}

// ---- today's figures -------------------------------------------------------------------------

const ANSWERED = new Set(["connected", "wrapup", "ended"]);

function renderFigures() {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const today = state.calls.filter((c) => (parseTime(c.created_at)?.getTime() ?? 0) >= midnight.getTime());
  const abandoned = today.filter((c) => c.state === "abandoned").length;
  const escalated = today.filter((c) => c.escalation_reason);
  const byReason = new Map();
  for (const c of escalated) byReason.set(c.escalation_reason, (byReason.get(c.escalation_reason) || 0) + 1);
  // The server's one figure of a caller's wait (wait_s), over the calls someone answered.
  const waits = today
    .filter((c) => ANSWERED.has(c.state) && typeof c.wait_s === "number")
    .map((c) => c.wait_s);
  byTestId("figure-calls").textContent = String(today.length);
  byTestId("figure-abandoned").textContent = String(abandoned);
  byTestId("figure-abandoned-rate").textContent = today.length ? `(${Math.round((abandoned / today.length) * 100)}%)` : "";
  byTestId("figure-escalations").textContent = String(escalated.length);
  byTestId("figure-average-wait").textContent = waits.length ? duration(waits.reduce((s, w) => s + w, 0) / waits.length) : "—";
  replace(
    byTestId("figure-escalations-by-reason"),
    [...byReason.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([reason, n]) => h("li", { testid: "figure-reason", dataset: { reason } }, h("span", {}, label(reason)), h("strong", {}, String(n)))),
  );
}

// ---- loading ---------------------------------------------------------------------------------

async function loadQueues() {
  state.queues = (await api("/api/queues")) || [];
  state.queuesAt = serverNow();
  renderQueues();
}

async function loadAgents() {
  const agents = (await api("/api/agents")) || [];
  state.agents = new Map(agents.map((a) => [a.id, a]));
  renderAgents();
  renderEscalations();
}

async function loadEscalations() {
  state.escalations = (await api("/api/escalations")) || [];
  renderEscalations();
}

async function loadIvr() {
  const calls = (await api("/api/calls?state=ivr")) || [];
  state.ivr = new Map(calls.map((c) => [c.id, c]));
  renderIvr();
}

async function loadCalls() {
  state.calls = (await api("/api/calls")) || [];
  renderFigures();
  renderAgents();
  renderWaiting();
}

async function loadAll() {
  const results = await Promise.allSettled([loadQueues(), loadAgents(), loadEscalations(), loadIvr(), loadCalls()]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) toast(`Could not load everything: ${failed.reason.message}`, "error");
}

// Many events arrive in bursts; read the lists once per burst.
let soon = null;
let later = null;
function refreshSoon() {
  clearTimeout(soon);
  soon = setTimeout(() => {
    Promise.allSettled([loadEscalations(), loadIvr()]);
  }, 200);
  if (!later) {
    later = setTimeout(() => {
      later = null;
      loadCalls().catch(() => {});
    }, 1500);
  }
}

function handleEvent(event) {
  const data = event.data;
  switch (event.type) {
    case "queue.stats":
      state.queues = Array.isArray(data) ? data : data?.queues || [];
      state.queuesAt = serverNow();
      renderQueues();
      break;
    case "agent.created":
      loadAgents().catch(() => {});
      break;
    case "agent.status": {
      const agent = state.agents.get(data.user_id);
      if (agent) {
        agent.status = data.status;
        renderAgents();
        renderEscalations();
      } else {
        loadAgents().catch(() => {});
      }
      break;
    }
    case "call.created":
      if (data?.id && data.state === "ivr") {
        state.ivr.set(data.id, data);
        renderIvr();
      }
      refreshSoon();
      break;
    case "call.queued":
    case "call.abandoned": {
      const id = data?.call_id ?? data?.id;
      if (state.ivr.delete(id)) renderIvr();
      refreshSoon();
      break;
    }
    default:
      if (event.type.startsWith("call.")) refreshSoon();
      break;
  }
}

// ---- start -----------------------------------------------------------------------------------

if (session) {
  byTestId("supervisor-name").textContent = session.user.display_name || session.user.username;
  byTestId("signout").addEventListener("click", async () => {
    live.close();
    await signOut();
    signOutTo("signed_out");
  });
  startTicking();
  loadAll();
  setInterval(() => loadCalls().catch(() => {}), 30000);

  const live = new Live({
    token: session.token,
    onEvent: handleEvent,
    onReady: ({ resumed }) => {
      // Replay brings every event back; the lists are read again as well, since they are cheap.
      if (!resumed) loadAll();
      else refreshSoon();
    },
    onAuthFailed: () => signOutTo("expired"),
  });
  mountConnectionIndicator(live, byTestId("connection-indicator"), byTestId("connection-banner"));
  live.start();
  window.tellonce = { live, state };
}
