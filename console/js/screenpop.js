// The screen pop: everything the phone tree and earlier agents learnt, readable at a glance.

import { h } from "./dom.js";
import { clock, dayAndTime, daysAgo, label, parseTime } from "./format.js";

export function identityBadge(call, { compact = false } = {}) {
  const identity = call.identity || {};
  if (identity.verified) {
    const how = identity.method ? ` by ${label(identity.method)}` : "";
    const when = identity.verified_at ? ` at ${clock(identity.verified_at)}` : "";
    return h(
      "span",
      { class: "badge badge-ok", testid: compact ? "identity-badge" : "pop-identity", dataset: { verified: "true" } },
      h("span", { "aria-hidden": "true" }, "✔ "),
      compact ? "Verified" : `Verified${how}${when}`,
    );
  }
  const text = call.customer ? "Not verified (number matches a customer)" : "Not verified";
  return h(
    "span",
    { class: "badge badge-warn", testid: compact ? "identity-badge" : "pop-identity", dataset: { verified: "false" } },
    h("span", { "aria-hidden": "true" }, "⚠ "),
    compact ? "Not verified" : text,
  );
}

export function callerName(call) {
  return call.customer?.name || call.caller_number || "Unknown caller";
}

// What the caller wants, or why the script could not help them.
export function reasonText(call) {
  if (call.escalation_reason) return `Escalated: ${label(call.escalation_reason)}`;
  if (call.intent) return label(call.intent);
  return "Reason not given";
}

function card(title, testid, ...body) {
  const id = `${testid}-title`;
  return h("section", { class: "card", "aria-labelledby": id, testid: `${testid}-card` }, h("h3", { id }, title), ...body);
}

function empty(text) {
  return h("p", { class: "muted empty" }, text);
}

// Three wrong PINs lock verification for 15 minutes: the agent must not be left wondering why
// the caller "cannot verify". A supervisor's view of the call (onUnlock given) can lift it.
function lockNotice(call, onUnlock) {
  const c = call.customer;
  if (!c?.locked) return null;
  return h(
    "div",
    { class: "lock-notice", testid: "pop-locked" },
    h(
      "span",
      { class: "badge badge-danger" },
      h("span", { "aria-hidden": "true" }, "🔒 "),
      "Verification locked: three wrong PINs (15 minutes)",
    ),
    onUnlock
      ? h(
          "button",
          { type: "button", class: "small", testid: "pop-unlock", onclick: () => onUnlock(c) },
          "Unlock",
        )
      : h("span", { class: "muted small" }, " A supervisor can lift it."),
  );
}

// "I had to ask for this again": one click beside each answer the phone tree collected and the
// identity it verified, while the call is the agent's (memory.onAskedAgain given). Once recorded
// by this agent, the button says so and does nothing more.
function askedAgainButton(call, field, memory) {
  if (!memory?.onAskedAgain || !["connected", "wrapup"].includes(call.state)) return null;
  const done = (call.asked_again || []).some((a) => a.field === field && a.agent_id === memory.me);
  return h(
    "button",
    {
      type: "button",
      class: `small asked-again${done ? " done" : ""}`,
      testid: `asked-again-${field}`,
      "aria-pressed": String(done),
      title: "I had to ask the caller for this again",
      onclick: done ? null : () => memory.onAskedAgain(field),
    },
    done ? "Asked again ✓" : "Asked again",
  );
}

function effortText(effort) {
  if (!effort) return "—";
  const parts = [`score ${effort.score}`];
  if (effort.ivr_retries) parts.push(`${effort.ivr_retries} retried in the tree`);
  if (effort.transfers) parts.push(`${effort.transfers} transfer${effort.transfers > 1 ? "s" : ""}`);
  if (effort.escalations) parts.push(`${effort.escalations} escalation${effort.escalations > 1 ? "s" : ""}`);
  if (effort.asked_again) parts.push(`asked again ${effort.asked_again}×`);
  return parts.join(" · ");
}

function callerCard(call, onUnlock, memory) {
  const c = call.customer;
  const segment = c?.segment;
  const previous = call.history?.[0];
  const lastCall = previous
    ? `${daysAgo(previous.started_at)} · ${historyTopic(previous)} · ${previous.disposition ? label(previous.disposition) : "not wrapped"}${previous.sentiment ? ` · ${label(previous.sentiment).toLowerCase()} mood` : ""}`
    : null;
  return h(
    "section",
    { class: "card caller", "aria-labelledby": "pop-caller-title", testid: "pop-caller-card" },
    h(
      "div",
      { class: "caller-head" },
      h("h3", { id: "pop-caller-title", class: "caller-name", testid: "pop-customer-name" }, callerName(call)),
      segment && segment !== "standard"
        ? h("span", { class: `badge badge-${segment}`, testid: "pop-segment" }, label(segment))
        : null,
    ),
    h("div", { class: "asked-row" }, identityBadge(call), call.identity?.verified ? askedAgainButton(call, "identity", memory) : null),
    lockNotice(call, onUnlock),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Calling from"),
      h("dd", { testid: "pop-caller-number" }, call.caller_number || "—"),
      c ? [h("dt", {}, "Account"), h("dd", { testid: "pop-account" }, c.account_number || "—")] : null,
      c && segment === "standard" ? [h("dt", {}, "Segment"), h("dd", { testid: "pop-segment" }, label(segment))] : null,
      h("dt", {}, "Language"),
      h("dd", { testid: "pop-language" }, label(call.language)),
      c && c.phone_numbers?.some((n) => n !== call.caller_number)
        ? [h("dt", {}, "Numbers on file"), h("dd", {}, c.phone_numbers.join(", "))]
        : null,
      lastCall ? [h("dt", {}, "Last call"), h("dd", { testid: "pop-last-call" }, lastCall)] : null,
      h("dt", {}, "Effort, this call"),
      h("dd", { testid: "pop-effort" }, effortText(call.effort)),
      c?.effort ? [h("dt", {}, "Effort, all calls"), h("dd", { testid: "pop-customer-effort" }, `${c.effort.score} over ${c.effort.calls} call${c.effort.calls === 1 ? "" : "s"}`)] : null,
    ),
  );
}

function reasonCard(call) {
  const escalated = Boolean(call.escalation_reason);
  return h(
    "section",
    { class: `card reason${escalated ? " escalated" : ""}`, "aria-labelledby": "pop-reason-title", testid: "pop-reason-card" },
    h(
      "div",
      { class: "reason-line" },
      h("h3", { id: "pop-reason-title" }, escalated ? "Needs a person" : "Called about"),
      h(
        "p",
        { class: "reason-main" },
        escalated
          ? h("span", { testid: "pop-escalation-reason", class: "reason-escalation" }, label(call.escalation_reason))
          : h("span", { testid: "pop-intent" }, call.intent ? label(call.intent) : "Not given"),
      ),
      escalated && call.intent ? h("span", { class: "reason-fact" }, "intent ", h("strong", { testid: "pop-intent" }, label(call.intent))) : null,
      h("span", { class: "reason-fact" }, "queue ", h("strong", { testid: "pop-queue" }, label(call.queue))),
      h("span", { class: "reason-fact" }, "called at ", h("strong", {}, clock(call.created_at))),
    ),
    call.utterance
      ? h(
          "figure",
          { class: "utterance" },
          h("blockquote", { testid: "pop-utterance" }, `“${call.utterance}”`),
          h("figcaption", {}, "In the caller's own words"),
        )
      : null,
  );
}

function collectedCard(call, memory) {
  const entries = Object.entries(call.collected || {});
  return card(
    "Answers collected",
    "pop-collected",
    entries.length
      ? h(
          "dl",
          { class: "facts", testid: "pop-collected" },
          entries.map(([key, value]) => [
            h("dt", {}, label(key)),
            h("dd", { class: "asked-row" }, h("span", {}, String(value)), askedAgainButton(call, key, memory)),
          ]),
        )
      : h("div", { testid: "pop-collected" }, empty("No other answers.")),
  );
}

function pathCard(call) {
  const steps = call.ivr_path || [];
  return card(
    "Phone tree path",
    "pop-ivr-path",
    steps.length
      ? h(
          "ol",
          { class: "timeline", testid: "pop-ivr-path" },
          steps.map((step, i) =>
            h(
              "li",
              { testid: "ivr-step" },
              h("time", { datetime: step.at || "" }, clock(step.at)),
              h(
                "div",
                {},
                h("span", { class: "step-node" }, `${i + 1}. ${label(step.node)}`),
                step.prompt ? h("span", { class: "step-prompt" }, ` — ${step.prompt}`) : null,
                h(
                  "div",
                  { class: "step-input" },
                  step.input === null || step.input === undefined || step.input === ""
                    ? h("span", { class: "muted" }, "no answer")
                    : ["Caller: ", h("kbd", {}, step.input)],
                ),
              ),
            ),
          ),
        )
      : h("div", { testid: "pop-ivr-path" }, empty("The call did not go through the phone tree.")),
  );
}

// What an earlier call was about: its intent, or for a call the phone tree escalated without
// one, the escalation and its reason.
function historyTopic(item) {
  if (item.intent) return label(item.intent);
  if (item.escalation_reason) return `Escalation (${label(item.escalation_reason).toLowerCase()})`;
  return item.queue ? label(item.queue) : "—";
}

function notesList(notes, testid) {
  return h(
    "ul",
    { class: "earlier-notes", testid },
    notes.map((n) => h("li", { testid: "earlier-note" }, h("strong", {}, person(n.author)), ": ", h("span", { class: "note-text" }, n.text))),
  );
}

// An earlier call opened from the screen pop: every note, and its outcome.
function earlierDetail(item, memory) {
  const opened = memory?.earlier?.[item.id];
  if (!opened) return null;
  if (opened === "loading") return h("p", { class: "muted small" }, "Opening…");
  if (opened.error) return h("p", { class: "muted small" }, opened.error);
  return h(
    "div",
    { class: "earlier-detail", testid: "earlier-detail" },
    opened.notes?.length ? notesList(opened.notes, "earlier-notes") : h("p", { class: "muted small" }, "No notes on that call."),
  );
}

function historyCard(call, memory) {
  const items = call.history || [];
  return card(
    "Earlier calls",
    "pop-history",
    items.length
      ? h(
          "ol",
          { class: "timeline history", testid: "pop-history" },
          items.map((item) =>
            h(
              "li",
              { testid: "history-item", dataset: { callId: item.id } },
              h("time", { datetime: item.started_at || "", title: dayAndTime(item.started_at) }, daysAgo(item.started_at)),
              h(
                "div",
                {},
                h("strong", { testid: "history-topic" }, historyTopic(item)),
                h(
                  "div",
                  { class: "history-facts" },
                  h("span", { class: `outcome outcome-${item.disposition || "none"}` }, item.disposition ? label(item.disposition) : "Not wrapped"),
                  item.sentiment ? h("span", { class: `mood mood-${item.sentiment}` }, `${label(item.sentiment)} mood`) : null,
                  item.csat ? h("span", { class: "muted" }, `survey ${item.csat}/5`) : null,
                  typeof item.effort === "number" ? h("span", { class: "muted", testid: "history-effort" }, `effort ${item.effort}`) : null,
                ),
                item.last_note
                  ? h("p", { class: "history-note", testid: "history-note" }, h("strong", {}, person(item.last_note.author)), ": ", item.last_note.text)
                  : null,
                memory?.onOpenEarlier && !memory.earlier?.[item.id]
                  ? h("button", { type: "button", class: "small ghost", testid: "history-open", onclick: () => memory.onOpenEarlier(item.id) }, "Open this call")
                  : null,
                earlierDetail(item, memory),
              ),
            ),
          ),
        )
      : h("div", { testid: "pop-history" }, empty(call.customer ? "No earlier calls." : "Unknown caller: no history.")),
  );
}

// "Second call about this": the earlier call's outcome and notes before anything else.
function repeatCard(call, memory) {
  if (!call.repeat_of) return null;
  const item = (call.history || []).find((x) => x.id === call.repeat_of);
  const opened = memory?.earlier?.[call.repeat_of];
  const notes = opened && opened !== "loading" && !opened.error ? opened.notes || [] : null;
  return h(
    "section",
    { class: "card repeat", "aria-labelledby": "pop-repeat-title", testid: "pop-repeat" },
    h("h3", { id: "pop-repeat-title" }, "Second call about this"),
    item
      ? h(
          "p",
          { testid: "pop-repeat-outcome" },
          `${daysAgo(item.started_at)}: ${historyTopic(item)} · ${item.disposition ? label(item.disposition) : "not wrapped"}`,
        )
      : null,
    notes
      ? notes.length
        ? notesList(notes, "pop-repeat-notes")
        : h("p", { class: "muted small" }, "No notes on that call.")
      : item?.last_note
        ? h("p", { class: "history-note", testid: "pop-repeat-note" }, h("strong", {}, person(item.last_note.author)), ": ", item.last_note.text)
        : null,
  );
}

// The caller asked to be called back rather than hold: the agent who takes the call phones the
// number (the console cannot dial; a tel: link hands it to the agent's phone), then records it.
function callbackCard(call, memory) {
  const cb = call.callback;
  if (!cb) return null;
  const canRecord = memory?.onCalledBack && call.state === "connected" && !cb.called_back_at;
  return h(
    "section",
    { class: "card callback", "aria-labelledby": "pop-callback-title", testid: "pop-callback" },
    h("h3", { id: "pop-callback-title" }, "Call back"),
    h(
      "p",
      {},
      "The caller kept their place and hung up at ",
      clock(cb.requested_at),
      ". Phone them on ",
      h("a", { href: `tel:${cb.number}`, testid: "pop-callback-number" }, cb.number),
      ".",
    ),
    cb.called_back_at
      ? h("p", { class: "muted small", testid: "pop-called-back-at" }, `Called back at ${clock(cb.called_back_at)}.`)
      : canRecord
        ? h(
            "button",
            { type: "button", class: "primary", testid: "pop-called-back", onclick: () => memory.onCalledBack() },
            "I called them back",
          )
        : h("p", { class: "muted small" }, "Accept the call, then phone the number."),
  );
}

function promisesCard(call, memory) {
  const promises = call.promises || [];
  if (!promises.length) return null;
  return card(
    "Promises",
    "pop-promises",
    h(
      "ul",
      { class: "promises", testid: "pop-promises" },
      promises.map((p) =>
        h(
          "li",
          { testid: "promise-item", class: p.kept_at ? "kept" : p.overdue ? "overdue" : "open", dataset: { promiseId: p.id } },
          h("span", { class: "promise-text" }, p.text),
          " ",
          h(
            "span",
            { class: "muted small" },
            p.kept_at ? `kept by ${person(p.kept_by)}` : `${p.overdue ? "overdue since" : "due"} ${p.due} · promised by ${person(p.made_by)}`,
          ),
          !p.kept_at && memory?.onKeepPromise
            ? h("button", { type: "button", class: "small", testid: "promise-keep", onclick: () => memory.onKeepPromise(p.id) }, "Mark kept")
            : null,
        ),
      ),
    ),
  );
}

function person(p) {
  return p?.display_name || "someone";
}

// Notes and transfers in one story; a transfer's note is shown once, with the transfer.
function timelineCard(call) {
  const transfers = call.transfers || [];
  // The note of a transfer is also in notes, by whoever wrote it (the agent, or the supervisor).
  const transferNotes = new Set(transfers.map((t) => `${(t.by || t.from_agent)?.id ?? ""}|${t.note ?? ""}`));
  const items = [];
  for (const t of transfers) items.push({ kind: "transfer", at: t.at, t });
  for (const n of call.notes || []) {
    if (transferNotes.has(`${n.author?.id ?? ""}|${n.text}`)) continue;
    items.push({ kind: "note", at: n.at, n });
  }
  items.sort((a, b) => (parseTime(a.at)?.getTime() ?? 0) - (parseTime(b.at)?.getTime() ?? 0));
  return card(
    "Notes and transfers",
    "pop-timeline",
    items.length
      ? h(
          "ol",
          { class: "timeline", testid: "pop-timeline" },
          items.map((item) => {
            if (item.kind === "note") {
              return h(
                "li",
                { testid: "note-item" },
                h("time", { datetime: item.at || "" }, clock(item.at)),
                h("div", {}, h("strong", {}, person(item.n.author)), " noted: ", h("span", { class: "note-text" }, item.n.text)),
              );
            }
            const t = item.t;
            const to = t.to_agent ? person(t.to_agent) : `queue ${label(t.to_queue)}`;
            return h(
              "li",
              { testid: "transfer-item", class: "transfer" },
              h("time", { datetime: item.at || "" }, clock(item.at)),
              t.by
                ? h(
                    "div",
                    {},
                    h("strong", {}, person(t.by)),
                    t.from_agent ? [" moved it from ", h("strong", {}, person(t.from_agent)), " to "] : " gave it to ",
                    h("strong", {}, to),
                    t.note ? h("div", { class: "note-text" }, `“${t.note}”`) : null,
                  )
                : h(
                    "div",
                    {},
                    h("strong", {}, t.from_agent ? person(t.from_agent) : "The system"),
                    " transferred to ",
                    h("strong", {}, to),
                    t.note ? h("div", { class: "note-text" }, `“${t.note}”`) : null,
                  ),
            );
          }),
        )
      : h("div", { testid: "pop-timeline" }, empty("No notes yet.")),
  );
}

// onUnlock(customer): given on a supervisor's page, offers to lift a verification lock.
// memory (the agent's page): {me, onAskedAgain(field), onOpenEarlier(callId), onKeepPromise(id),
// earlier: {callId: context | "loading" | {error}}}.
export function renderScreenPop(call, { onUnlock, memory } = {}) {
  return [
    reasonCard(call),
    callbackCard(call, memory),
    repeatCard(call, memory),
    h(
      "div",
      { class: "pop-grid" },
      h("div", { class: "stack" }, callerCard(call, onUnlock, memory), promisesCard(call, memory), pathCard(call)),
      h("div", { class: "stack" }, timelineCard(call), historyCard(call, memory), collectedCard(call, memory)),
    ),
  ];
}
