// One clock for the page: every element with data-since shows the time elapsed since then.

import { duration, parseTime, serverNow } from "./format.js";

export function startTicking(onTick) {
  const tick = () => {
    const now = serverNow();
    for (const el of document.querySelectorAll("[data-since]")) {
      const since = parseTime(el.dataset.since);
      const base = Number(el.dataset.base || 0);
      if (!since) continue;
      el.textContent = duration(base + (now - since.getTime()) / 1000);
    }
    for (const el of document.querySelectorAll("[data-clock]")) {
      el.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
    if (onTick) onTick(now);
  };
  tick();
  return setInterval(tick, 1000);
}

// A live duration: right from the first paint, then kept current by startTicking.
export function since(start, { base = 0, ...attrs } = {}) {
  const at = start instanceof Date ? start.toISOString() : start;
  const began = parseTime(at);
  const text = began ? duration(base + (serverNow() - began.getTime()) / 1000) : "—";
  const span = document.createElement("span");
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "testid") span.dataset.testid = value;
    else if (key === "class") span.className = value;
    else span.setAttribute(key, value);
  }
  if (began) {
    span.dataset.since = at;
    span.dataset.base = String(base);
  }
  span.textContent = text;
  return span;
}
