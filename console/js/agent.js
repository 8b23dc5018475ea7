// The agent's page: status, offers, the screen pop of the current call and its actions.

import { askForNotifications, chime, notify } from "./alert.js";
import { ApiError, api } from "./api.js";
import { byTestId, h, replace, toast } from "./dom.js";
import { clock, duration, label, parseTime, serverNow } from "./format.js";
import { Live, mountConnectionIndicator } from "./live.js";
import { callerName, identityBadge, reasonText, renderScreenPop } from "./screenpop.js";
import { requireRole, signOut, signOutTo } from "./session.js";
import { since, startTicking } from "./ticker.js";

const session = requireRole("agent");
const ACTIVE = new Set(["offered", "connected", "wrapup"]);
const DEFAULT_OFFER_S = 15;

const state = {
  me: session?.user,
  status: session?.user?.status || "offline",
  wantedStatus: null,
  call: null,
  offerExpiresAt: null,
  offerTotalMs: DEFAULT_OFFER_S * 1000,
  agents: [],
  queues: [],
  lastCall: null,
  busy: false,
  tab: "note",
  statusVersion: 0,
  wrapupUntil: null,
  missedOffer: null, // an offer that timed out unanswered: why the agent is away now
  earlier: {}, // earlier calls of the customer opened from the screen pop: id -> context
  offerNote: null, // the desktop notification of the ringing offer, closed once it ends // when after-call work ends (status wrapup with TELLONCE_WRAPUP_S)
};

const el = {
  name: byTestId("agent-name"),
  status: byTestId("status-current"),
  pending: byTestId("status-pending"),
  switch: byTestId("status-switch"),
  offer: byTestId("offer"),
  offerCaller: byTestId("offer-caller"),
  offerIdentity: byTestId("offer-identity"),
  offerReason: byTestId("offer-reason"),
  offerUtterance: byTestId("offer-utterance"),
  offerCountdown: byTestId("offer-countdown"),
  offerMeter: byTestId("offer-meter"),
  offerDeadline: byTestId("offer-deadline"),
  accept: byTestId("offer-accept"),
  reject: byTestId("offer-reject"),
  idle: byTestId("idle"),
  idleHint: byTestId("idle-hint"),
  idleTitle: byTestId("idle-title"),
  lastCall: byTestId("last-call"),
  queues: byTestId("agent-queues"),
  pop: byTestId("screen-pop"),
  actions: byTestId("actions"),
  callBanner: byTestId("call-banner"),
  noteForm: byTestId("note-form"),
  transferForm: byTestId("transfer-form"),
  transferTarget: byTestId("transfer-target"),
  escalateForm: byTestId("escalate-form"),
  wrapForm: byTestId("wrap-form"),
};

// ---- rendering -------------------------------------------------------------------------------

function renderStatus() {
  el.name.textContent = state.me?.display_name || state.me?.username || "";
  el.status.textContent = label(state.status);
  el.status.dataset.status = state.status;
  el.status.setAttribute("aria-label", `My status: ${label(state.status)}`);
  for (const button of el.switch.querySelectorAll("[data-status-choice]")) {
    const choice = button.dataset.statusChoice;
    button.setAttribute("aria-pressed", String(choice === (state.wantedStatus || state.status)));
  }
  const pending = state.wantedStatus && state.wantedStatus !== state.status && ACTIVE.has(state.status);
  el.pending.hidden = !pending;
  el.pending.textContent = pending ? `${label(state.wantedStatus)} after this call` : "";
  el.idleTitle.textContent = state.status === "wrapup" ? "After-call work" : "Waiting for the next call";
  if (state.status === "wrapup") {
    const next = state.wantedStatus && state.wantedStatus !== "available" ? label(state.wantedStatus).toLowerCase() : "available";
    replace(
      el.idleHint,
      state.wrapupUntil
        ? [`Time to finish your notes: you will be ${next} in `, h("strong", { testid: "wrapup-countdown" }, wrapupLeft(serverNow())), "."]
        : "Wrap the call to take the next one.",
    );
    return;
  }
  el.idleHint.textContent =
    state.status === "available"
      ? "You are available: a call will pop up here the moment it is offered to you."
      : state.status === "away" && state.missedOffer
        ? `You missed a call from ${state.missedOffer.caller} at ${clock(state.missedOffer.at)}, so you were set to Away: no calls are offered to an empty desk. Press Alt+1 to be Available again.`
        : state.status === "away"
        ? "You are away: no calls will be offered. Press Available (Alt+1) when ready."
        : state.status === "offline"
          ? "You are offline. Press Available (Alt+1) to take calls."
          : "";
}

function renderOffer() {
  const call = state.call;
  const offered = call && call.state === "offered";
  el.offer.hidden = !offered;
  document.body.classList.toggle("has-offer", Boolean(offered));
  if (!offered) {
    document.title = "Agent · Tellonce";
    return;
  }
  el.offer.dataset.callId = call.id;
  el.offerCaller.textContent = callerName(call);
  replace(el.offerIdentity, identityBadge(call, { compact: true }));
  el.offerReason.textContent = reasonText(call);
  el.offerReason.classList.toggle("escalated", Boolean(call.escalation_reason));
  el.offerUtterance.hidden = !call.utterance;
  el.offerUtterance.textContent = call.utterance ? `“${call.utterance}”` : "";
  el.offerDeadline.textContent = state.offerExpiresAt ? `Answer by ${clock(state.offerExpiresAt)}` : "";
  tickOffer(serverNow());
}

function wrapupLeft(now) {
  return `${Math.max(0, Math.ceil((state.wrapupUntil.getTime() - now) / 1000))}s`;
}

function tickWrapup(now) {
  const countdown = el.idleHint.querySelector("[data-testid=wrapup-countdown]");
  if (countdown && state.wrapupUntil) countdown.textContent = wrapupLeft(now);
}

function tickOffer(now) {
  if (el.offer.hidden) return;
  if (!state.offerExpiresAt) {
    el.offerCountdown.textContent = "Waiting";
    el.offerMeter.style.width = "100%";
    return;
  }
  const left = state.offerExpiresAt.getTime() - now;
  const s = Math.max(0, Math.ceil(left / 1000));
  el.offerCountdown.textContent = `${s}s`;
  el.offerCountdown.setAttribute("aria-label", `${s} seconds left to answer`);
  el.offerMeter.style.width = `${Math.max(0, Math.min(100, (left / state.offerTotalMs) * 100))}%`;
  el.offer.classList.toggle("urgent", s <= 5);
  document.title = s % 2 ? "● Incoming call · Tellonce" : "Incoming call · Tellonce";
}

function popHeader(call) {
  // The server's one figure: time queued before each answer, over every queue (wait_s).
  const queuedFor = !call.waiting_since && typeof call.wait_s === "number" ? duration(call.wait_s) : null;
  return h(
    "div",
    { class: "pop-head" },
    h("h2", { class: "pop-title" }, "Call ", h("span", { testid: "pop-call-id" }, `#${call.id}`)),
    h("span", { class: "badge", testid: "pop-state", dataset: { state: call.state } }, call.state === "wrapup" ? "Caller hung up" : label(call.state)),
    call.state === "connected" && call.connected_at
      ? h("span", { class: "pop-timer" }, "On call ", since(call.connected_at, { testid: "pop-talk-time" }))
      : null,
    call.state === "offered" && call.waiting_since
      ? h("span", { class: "pop-timer" }, "Waiting ", since(call.waiting_since, { testid: "pop-wait" }))
      : null,
    queuedFor ? h("span", { class: "muted", testid: "pop-waited" }, `waited ${queuedFor} in queue`) : null,
    call.transfers?.length ? h("span", { class: "badge badge-warn" }, `${call.transfers.length} transfer${call.transfers.length > 1 ? "s" : ""}`) : null,
  );
}

function renderCall() {
  const call = state.call;
  renderOffer();
  el.idle.hidden = Boolean(call);
  el.pop.hidden = !call;
  el.actions.hidden = !call || call.state === "offered";
  if (!call) {
    replace(el.pop);
    renderLastCall();
    return;
  }
  el.pop.dataset.callId = call.id;
  el.pop.dataset.state = call.state;
  replace(el.pop, popHeader(call), renderScreenPop(call, { memory: memoryOf() }));
  const connected = call.state === "connected";
  for (const tab of el.actions.querySelectorAll("[role=tab][data-connected-only]")) tab.hidden = !connected;
  if (!connected && state.tab !== "note" && state.tab !== "wrap") showTab("wrap");
  else showTab(state.tab);
  el.callBanner.dataset.state = call.state;
  el.callBanner.textContent =
    call.state === "wrapup"
      ? "The caller has hung up. Add your notes and wrap the call."
      : connected
        ? `Connected with ${callerName(call)} since ${clock(call.connected_at)}.`
        : "";
}

// ---- action tabs: one form at a time, so that each fits a 720-pixel screen ---------------------

const tabs = [...el.actions.querySelectorAll("[role=tab]")];

function showTab(name, { focus = false } = {}) {
  state.tab = name;
  for (const tab of tabs) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  for (const panel of el.actions.querySelectorAll("[role=tabpanel]")) panel.hidden = panel.dataset.panel !== name;
  // Who can take a transfer changes all the time: read it again whenever the tab opens.
  if (name === "transfer" && state.call?.state === "connected") loadTransferTargets();
  if (focus) {
    const panel = el.actions.querySelector(`[data-panel="${name}"]`);
    const first = panel?.querySelector("textarea, select, input:not([type=radio]), input[type=radio]");
    first?.focus();
  }
}

for (const tab of tabs) {
  tab.addEventListener("click", () => showTab(tab.dataset.tab, { focus: true }));
  tab.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const visible = tabs.filter((t) => !t.hidden);
    const i = visible.indexOf(tab);
    const next = visible[(i + (event.key === "ArrowRight" ? 1 : -1) + visible.length) % visible.length];
    showTab(next.dataset.tab);
    next.focus();
    event.preventDefault();
  });
}

function renderLastCall() {
  const last = state.lastCall;
  el.lastCall.hidden = !last;
  if (last) replace(el.lastCall, h("strong", {}, `Call #${last.id}`), ` ${last.text} at ${clock(last.at)}.`);
}

function renderQueues() {
  const tbody = el.queues.tBodies[0];
  replace(
    tbody,
    state.queues.map((q) =>
      h(
        "tr",
        { testid: "agent-queue-row", dataset: { queue: q.name } },
        h("th", { scope: "row" }, label(q.name)),
        h("td", { class: "num" }, String(q.waiting)),
        h("td", { class: "num" }, q.waiting ? duration(q.longest_wait_s) : "—"),
        h("td", { class: "num" }, `${q.agents_available} of ${q.agents_signed_in}`),
      ),
    ),
  );
}

function renderTransferTargets() {
  const select = el.transferTarget;
  const chosen = select.value;
  const queues = state.queues.map((q) => q.name);
  for (const name of ["billing", "cards", "loans", "escalations"]) if (!queues.includes(name)) queues.push(name);
  const others = state.agents.filter((a) => a.id !== state.me?.id);
  replace(
    select,
    h("option", { value: "" }, "Choose a queue or an agent…"),
    h(
      "optgroup",
      { label: "Queues" },
      queues.map((name) => h("option", { value: `queue:${name}` }, `Queue: ${label(name)}`)),
    ),
    h(
      "optgroup",
      { label: "Agents" },
      others.map((a) =>
        h(
          "option",
          { value: `agent:${a.id}`, disabled: a.status === "offline" },
          `${a.display_name} (${label(a.status)}${a.skills?.length ? `; ${a.skills.map(label).join(", ")}` : ""})`,
        ),
      ),
    ),
  );
  if ([...select.options].some((o) => o.value === chosen && !o.disabled)) select.value = chosen;
}

// ---- state changes ---------------------------------------------------------------------------

function setCall(call, { offerExpiresAt } = {}) {
  const previous = state.call;
  const sameCall = previous && call && previous.id === call.id;
  state.call = call;
  if (call?.state === "offered") {
    const expires = parseTime(offerExpiresAt || call.offer_expires_at) || (sameCall ? state.offerExpiresAt : null);
    if (!sameCall || previous.state !== "offered" || expires?.getTime() !== state.offerExpiresAt?.getTime()) {
      state.offerTotalMs = expires ? Math.max(1000, expires.getTime() - serverNow()) : DEFAULT_OFFER_S * 1000;
    }
    state.offerExpiresAt = expires;
  } else {
    state.offerExpiresAt = null;
  }
  if (call && !sameCall) {
    resetForms();
    state.earlier = {};
    state.tab = call.state === "wrapup" ? "wrap" : "note";
  } else if (call?.state === "wrapup" && previous?.state !== "wrapup") {
    state.tab = "wrap";
  }
  renderCall();
  // A second call about the same thing: the earlier call's notes come first, unasked.
  if (call?.repeat_of && !(call.repeat_of in state.earlier)) openEarlier(call.repeat_of);
  if (call?.state === "offered" && (!sameCall || previous.state !== "offered")) {
    el.accept.focus({ preventScroll: true });
    announceOffer(call);
  } else if (state.offerNote && call?.state !== "offered") {
    state.offerNote.close();
    state.offerNote = null;
  }
  if (call && call.state === "connected" && (!previous || previous.state !== "connected")) {
    loadTransferTargets();
  }
}

// A new offer: a chime always, and a desktop notification if the page is not being looked at.
function announceOffer(call) {
  state.missedOffer = null;
  chime();
  state.offerNote = notify(`Incoming call: ${callerName(call)}`, reasonText(call));
}

function leaveCall(text) {
  if (state.call) state.lastCall = { id: state.call.id, text, at: new Date() };
  setCall(null);
}

// ---- memory of earlier calls: asked again, earlier notes, promises ---------------------------

function memoryOf() {
  return {
    me: state.me?.id,
    earlier: state.earlier,
    onAskedAgain: askedAgain,
    onOpenEarlier: openEarlier,
    onKeepPromise: keepPromise,
    onCalledBack: calledBack,
  };
}

async function calledBack() {
  const call = state.call;
  if (!call) return;
  await run("Recording the call back", async () => {
    const found = await api(`/api/calls/${call.id}/called-back`, { method: "POST" });
    if (state.call?.id !== call.id) return;
    setCall(found);
    toast(`Recorded: you called ${found.callback?.number || "the caller"} back.`);
  });
}

async function askedAgain(field) {
  const call = state.call;
  if (!call) return;
  await run("Recording", async () => {
    const entry = await api(`/api/calls/${call.id}/asked-again`, { method: "POST", body: { field } });
    if (state.call?.id !== call.id) return;
    const known = (state.call.asked_again || []).some((a) => a.field === entry.field && a.agent_id === entry.agent_id);
    if (!known) state.call = { ...state.call, asked_again: [...(state.call.asked_again || []), entry] };
    renderCall();
    toast(`Recorded: you had to ask for ${label(field).toLowerCase()} again.`);
  });
}

async function openEarlier(callId) {
  const forCall = state.call?.id;
  state.earlier = { ...state.earlier, [callId]: "loading" };
  renderCall();
  let found;
  try {
    found = await api(`/api/calls/${callId}`);
  } catch (err) {
    found = { error: `That call cannot be opened: ${err.message}` };
  }
  if (state.call?.id !== forCall) return;
  state.earlier = { ...state.earlier, [callId]: found };
  renderCall();
}

async function keepPromise(promiseId) {
  const call = state.call;
  if (!call) return;
  await run("Marking the promise kept", async () => {
    const kept = await api(`/api/promises/${promiseId}/kept`, { method: "POST" });
    if (state.call?.id !== call.id) return;
    state.call = { ...state.call, promises: (state.call.promises || []).map((p) => (p.id === kept.id ? kept : p)) };
    renderCall();
    toast("Promise marked kept.");
  });
}

function resetForms() {
  for (const form of [el.noteForm, el.transferForm, el.escalateForm, el.wrapForm]) form.reset();
}

function handleEvent(event) {
  const data = event.data || {};
  const mine = state.me?.id;
  switch (event.type) {
    case "call.offered":
      if (data.agent_id === undefined || data.agent_id === null || data.agent_id === mine) {
        setCall({ ...data, state: "offered" }, { offerExpiresAt: data.offer_expires_at });
      }
      break;
    case "call.offer_revoked":
      if (state.call && state.call.id === data.call_id && state.call.state === "offered") {
        const why = { timeout: "not answered in time", reassigned: "given to another agent by a supervisor", moved: "moved to another queue by a supervisor", abandoned: "the caller hung up" }[data.reason] || data.reason;
        toast(`Offer of call #${data.call_id} withdrawn: ${why}.`, "warn");
        // The server now sets this agent away (an empty desk gets no calls): say why, on the page.
        if (data.reason === "timeout") state.missedOffer = { at: new Date(), caller: callerName(state.call) };
        leaveCall(`offer withdrawn (${why})`);
      }
      break;
    case "call.connected":
      if (data.agent_id === mine) setCall(data);
      break;
    case "call.updated":
      applyUpdate(data);
      break;
    case "call.ended":
      if (state.call && state.call.id === data.id) leaveCall(`wrapped: ${label(data.disposition)}`);
      break;
    case "agent.status":
      if (data.user_id === mine) {
        state.status = data.status;
        state.wrapupUntil = parseTime(data.wrapup_until);
        if (data.status !== "away") state.missedOffer = null;
        state.statusVersion += 1;
        if (state.wantedStatus === data.status) state.wantedStatus = null;
        renderStatus();
      }
      break;
    default:
      break;
  }
}

// Why a call left this agent, read from its context (the event may beat the action's answer).
function departure(call) {
  const mine = state.me?.id;
  if (call.state === "ended") return `wrapped: ${label(call.disposition)}`;
  if (call.state === "abandoned") return "the caller hung up";
  const last = call.transfers?.[call.transfers.length - 1];
  if (call.queue === "escalations" && (!last || last.to_queue === "escalations")) {
    return `escalated (${label(call.escalation_reason)})`;
  }
  if (last && last.from_agent?.id === mine) {
    const where = last.to_agent ? last.to_agent.display_name : `queue ${label(last.to_queue)}`;
    return last.by ? `${last.by.display_name} moved it to ${where}` : `transferred to ${where}`;
  }
  return "handed on";
}

function applyUpdate(call) {
  const current = state.call;
  const mine = state.me?.id;
  if (current && current.id === call.id) {
    if (!ACTIVE.has(call.state) || (call.agent_id !== undefined && call.agent_id !== mine)) {
      leaveCall(departure(call));
    } else {
      setCall(call);
    }
  } else if (!current && call.agent_id === mine && (call.state === "connected" || call.state === "wrapup")) {
    setCall(call);
  }
}

// ---- loading ---------------------------------------------------------------------------------

async function loadSnapshot() {
  const version = state.statusVersion;
  const [me, calls] = await Promise.all([api("/api/me"), api("/api/calls")]);
  state.me = me;
  // A status set or announced while this was loading is newer than what it read.
  if (version === state.statusVersion) {
    state.status = me.status;
    state.wrapupUntil = parseTime(me.wrapup_until);
  }
  renderStatus();
  const active = (calls || []).find((c) => c.agent_id === me.id && ACTIVE.has(c.state));
  if (active) {
    const full = await api(`/api/calls/${active.id}`);
    if (ACTIVE.has(full.state) && full.agent_id === me.id) setCall(full, { offerExpiresAt: full.offer_expires_at || active.offer_expires_at });
    else if (state.call) setCall(null);
  } else if (state.call) {
    setCall(null);
  }
}

async function loadQueues() {
  try {
    state.queues = (await api("/api/queues")) || [];
    renderQueues();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) console.warn("queues", err);
  }
}

async function loadTransferTargets() {
  try {
    const [agents] = await Promise.all([api("/api/agents"), loadQueues()]);
    state.agents = agents || [];
  } catch (err) {
    console.warn("agents", err);
  }
  renderTransferTargets();
}

// Events that arrive while a snapshot loads are applied after it, in order.
let loading = 0;
let buffered = [];
async function withSnapshot(load) {
  loading += 1;
  try {
    await load();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(`Could not load your calls: ${err.message}`, "error");
  } finally {
    loading -= 1;
    if (!loading) {
      const events = buffered;
      buffered = [];
      for (const event of events) handleEvent(event);
    }
  }
}

// ---- actions ---------------------------------------------------------------------------------

async function run(description, fn) {
  if (state.busy) return undefined;
  state.busy = true;
  document.body.classList.add("working");
  try {
    return await fn();
  } catch (err) {
    toast(`${description} failed: ${err.message}`, "error");
    return undefined;
  } finally {
    state.busy = false;
    document.body.classList.remove("working");
  }
}

async function setStatus(status) {
  if (status === "available") askForNotifications();
  await run("Changing status", async () => {
    const user = await api("/api/me/status", { method: "PUT", body: { status } });
    state.status = user.status;
    state.wrapupUntil = parseTime(user.wrapup_until);
    state.statusVersion += 1;
    state.wantedStatus = user.status === status ? null : status;
    renderStatus();
    if (status === "available" && !state.call) loadQueues();
  });
}

async function accept() {
  const call = state.call;
  if (!call || call.state !== "offered") return;
  await run("Accepting", async () => {
    const connected = await api(`/api/calls/${call.id}/accept`, { method: "POST" });
    if (state.call && state.call.id === call.id) setCall(connected);
    byTestId("note-text").focus({ preventScroll: true });
  });
}

async function reject() {
  const call = state.call;
  if (!call || call.state !== "offered") return;
  await run("Rejecting", async () => {
    await api(`/api/calls/${call.id}/reject`, { method: "POST" });
    if (state.call && state.call.id === call.id) leaveCall("rejected");
  });
}

el.noteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const call = state.call;
  const text = el.noteForm.text.value.trim();
  if (!call || !text) return;
  await run("Adding the note", async () => {
    await api(`/api/calls/${call.id}/notes`, { method: "POST", body: { text } });
    el.noteForm.reset();
    const fresh = await api(`/api/calls/${call.id}`);
    if (state.call && state.call.id === call.id) setCall(fresh);
    toast("Note added.");
  });
});

el.transferForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const call = state.call;
  const target = el.transferForm.target.value;
  const note = el.transferForm.note.value.trim();
  if (!call || !target || !note) {
    toast("Choose where to transfer and write a note for them.", "warn");
    return;
  }
  const [kind, value] = [target.slice(0, target.indexOf(":")), target.slice(target.indexOf(":") + 1)];
  const body = kind === "agent" ? { agent_id: Number(value), note } : { queue: value, note };
  const where = kind === "agent" ? el.transferTarget.selectedOptions[0]?.textContent.replace(/ \(.*$/, "") : `queue ${label(value)}`;
  await run("Transfer", async () => {
    await api(`/api/calls/${call.id}/transfer`, { method: "POST", body });
    toast(`Call #${call.id} transferred to ${where}.`);
    if (state.call && state.call.id === call.id) leaveCall(`transferred to ${where}`);
  });
});

el.escalateForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const call = state.call;
  const reason = el.escalateForm.reason.value.trim();
  if (!call || !reason) return;
  await run("Escalation", async () => {
    await api(`/api/calls/${call.id}/escalate`, { method: "POST", body: { reason } });
    toast(`Call #${call.id} escalated: ${label(reason)}.`);
    if (state.call && state.call.id === call.id) leaveCall(`escalated (${label(reason)})`);
  });
});

el.wrapForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const call = state.call;
  const form = el.wrapForm;
  const disposition = form.disposition.value;
  const sentiment = form.sentiment.value;
  if (!call || !disposition || !sentiment) {
    toast("Choose the outcome and the caller's mood.", "warn");
    (disposition ? form.querySelector("[name=sentiment]") : form.querySelector("[name=disposition]")).focus();
    return;
  }
  const notes = form.notes.value.trim();
  const body = { disposition, sentiment };
  if (notes) body.notes = notes;
  const promised = form.promise_text.value.trim();
  if (disposition === "follow_up" && promised) {
    if (!form.promise_due.value) {
      toast("Say by when the promise is kept.", "warn");
      form.promise_due.focus();
      return;
    }
    body.promise = { text: promised, due: form.promise_due.value };
  }
  await run("Wrap", async () => {
    await api(`/api/calls/${call.id}/wrap`, { method: "POST", body });
    if (state.call && state.call.id === call.id) leaveCall(`wrapped: ${label(disposition)}`);
    loadQueues();
  });
});

el.accept.addEventListener("click", accept);
el.reject.addEventListener("click", reject);
el.transferTarget.addEventListener("focus", () => loadTransferTargets());
for (const button of el.switch.querySelectorAll("[data-status-choice]")) {
  button.addEventListener("click", () => setStatus(button.dataset.statusChoice));
}

byTestId("signout").addEventListener("click", async () => {
  live?.close();
  await signOut();
  signOutTo("signed_out");
});

// ---- keyboard --------------------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function focusTab(name) {
  const tab = tabs.find((t) => t.dataset.tab === name);
  if (el.actions.hidden || !tab || tab.hidden) return;
  showTab(name, { focus: true });
}

document.addEventListener("keydown", (event) => {
  const key = event.key.toLowerCase();
  if (event.ctrlKey && event.key === "Enter") {
    const form = event.target.closest?.("form");
    if (form && el.actions.contains(form)) {
      event.preventDefault();
      form.requestSubmit();
    }
    return;
  }
  const plain = !event.altKey && !event.ctrlKey && !event.metaKey && !typing(event.target);
  const alt = event.altKey && !event.ctrlKey && !event.metaKey;
  const offered = state.call?.state === "offered";
  if (offered && (plain || alt) && (key === "a" || key === "r")) {
    event.preventDefault();
    if (key === "a") accept();
    else reject();
    return;
  }
  if (!alt) return;
  const code = event.code;
  const forms = { KeyN: "note", KeyT: "transfer", KeyE: "escalate", KeyW: "wrap" };
  if (forms[code]) {
    event.preventDefault();
    focusTab(forms[code]);
  } else if (code === "Digit1") {
    event.preventDefault();
    setStatus("available");
  } else if (code === "Digit2") {
    event.preventDefault();
    setStatus("away");
  } else if (code === "Digit0") {
    event.preventDefault();
    setStatus("offline");
  }
});

// ---- start -----------------------------------------------------------------------------------

let live = null;
if (session) {
  renderStatus();
  renderCall();
  startTicking((now) => {
    tickOffer(now);
    tickWrapup(now);
  });
  withSnapshot(loadSnapshot);
  loadQueues();
  setInterval(() => {
    if (!state.call) loadQueues();
  }, 10000);

  live = new Live({
    token: session.token,
    onEvent: (event) => {
      if (loading) buffered.push(event);
      else handleEvent(event);
    },
    onReady: ({ resumed }) => {
      // First connection: nothing was replayed, so read the state the events will build on.
      if (!resumed) withSnapshot(loadSnapshot);
    },
    onAuthFailed: () => signOutTo("expired"),
  });
  mountConnectionIndicator(live, byTestId("connection-indicator"), byTestId("connection-banner"));
  live.start();
  window.tellonce = { live, state };
}
