// Words and times as people read them: local time, short durations, labels for codes.

// The server's clock, as far as the browser can tell: waits and offer deadlines are server
// times, and an agent's PC clock that is a minute off must not eat a 15-second offer.
const skew = { offset: 0, samples: [] };

export function serverNow() {
  return Date.now() + skew.offset;
}

export function noteServerDate(header, sentAt, receivedAt) {
  const server = header ? Date.parse(header) : NaN;
  if (Number.isNaN(server)) return;
  // The Date header has whole seconds: the true time lies within the next second.
  skew.samples.push(server + 500 - (sentAt + receivedAt) / 2);
  if (skew.samples.length > 15) skew.samples.shift();
  const sorted = [...skew.samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  // Within a second or two the header cannot tell; only correct a clearly wrong clock.
  skew.offset = Math.abs(median) > 1500 ? median : 0;
}

export function parseTime(value) {
  if (!value) return null;
  // The API sends timezone-aware ISO-8601; a naive value is taken as UTC, never as local time.
  const text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function clock(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function shortClock(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function dayAndTime(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return `today ${shortClock(date)}`;
  return `${date.toLocaleDateString([], { day: "numeric", month: "short", year: date.getFullYear() === today.getFullYear() ? undefined : "numeric" })} ${shortClock(date)}`;
}

// "today", "yesterday", "12 days ago", then a date: how long ago a customer last called.
export function daysAgo(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  const start = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((start(new Date()) - start(date)) / 86400000);
  if (days <= 0) return "today";
  if (days === 1) return "yesterday";
  if (days < 60) return `${days} days ago`;
  return date.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" });
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

export function secondsSince(value, now = serverNow()) {
  const date = value instanceof Date ? value : parseTime(value);
  return date ? (now - date.getTime()) / 1000 : null;
}

const LABELS = {
  billing: "Balance and payments",
  card_lost: "Lost or stolen card",
  cards: "Cards",
  loans: "Loans",
  escalations: "Escalations",
  unscripted: "Not in the script",
  no_match: "No valid choice",
  caller_requested: "Asked for a person",
  verification_failed: "Verification failed",
  account_pin: "account number and PIN",
  resolved: "Resolved",
  follow_up: "Follow-up",
  unresolved: "Unresolved",
  positive: "Positive",
  neutral: "Neutral",
  negative: "Negative",
  available: "Available",
  away: "Away",
  offline: "Offline",
  offered: "Offered",
  busy: "On a call",
  wrapup: "Wrap-up",
  ivr: "In phone tree",
  queued: "Queued",
  connected: "Connected",
  ended: "Ended",
  abandoned: "Abandoned",
  standard: "Standard",
  vip: "VIP",
  at_risk: "At risk",
  en: "English",
  es: "Spanish",
};

export function label(code) {
  if (code === null || code === undefined || code === "") return "—";
  if (LABELS[code]) return LABELS[code];
  const text = String(code).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
