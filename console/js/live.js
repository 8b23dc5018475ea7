// The /ws side of the contract: authenticate, resume from the last seq seen, reconnect with backoff.
// The page learns of every event exactly once, in seq order, across any number of drops.

import { h, replace } from "./dom.js";
import { clock } from "./format.js";

const MAX_DELAY_MS = 10000;

export class Live {
  constructor({ token, onEvent, onReady, onAuthFailed }) {
    this.token = token;
    this.onEvent = onEvent;
    this.onReady = onReady || (() => {});
    this.onAuthFailed = onAuthFailed || (() => {});
    this.lastSeq = null;
    this.socket = null;
    this.attempts = 0;
    this.timer = null;
    this.held = false;
    this.readyCount = 0;
    this.state = "connecting";
    this.downSince = null;
    this.retryAt = null;
    this.listeners = new Set();
    window.addEventListener("online", () => {
      // A tab another took the place of, or refused, comes back only when the user asks.
      if (this.state !== "replaced" && this.state !== "refused") this.reconnectNow();
    });
  }

  subscribe(listener) {
    this.listeners.add(listener);
    listener(this);
  }

  setState(state) {
    this.state = state;
    for (const listener of this.listeners) listener(this);
  }

  start() {
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    this.socket = socket;
    this.setState(this.readyCount ? "reconnecting" : "connecting");
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "auth", token: this.token, last_seq: this.lastSeq }));
    });
    socket.addEventListener("message", (message) => {
      if (socket !== this.socket) return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      this.receive(event);
    });
    socket.addEventListener("close", (close) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (close.code === 4401) {
        this.setState("unauthorised");
        this.onAuthFailed();
        return;
      }
      // A newer tab of this user took this one's place (the server keeps a few per user), or
      // this page's origin is refused: reconnecting would only fight, or fail, again.
      if (close.code === 4409 || close.code === 4403) {
        clearTimeout(this.timer);
        this.setState(close.code === 4409 ? "replaced" : "refused");
        return;
      }
      if (this.state === "live" || this.downSince === null) this.downSince = new Date();
      this.scheduleReconnect();
    });
  }

  receive(event) {
    if (event.type === "ready") {
      // Everything up to ready.seq has been replayed (or, on a first connect, is history).
      if (typeof event.seq === "number") this.lastSeq = Math.max(this.lastSeq ?? 0, event.seq);
      const resumed = this.readyCount > 0;
      this.readyCount += 1;
      this.attempts = 0;
      this.downSince = null;
      this.retryAt = null;
      this.setState("live");
      this.onReady({ resumed, seq: event.seq });
      return;
    }
    if (typeof event.seq === "number") {
      if (this.lastSeq !== null && event.seq <= this.lastSeq) return;
      this.lastSeq = event.seq;
    }
    try {
      this.onEvent(event);
    } catch (err) {
      console.error("event handler failed", event, err);
    }
  }

  scheduleReconnect() {
    clearTimeout(this.timer);
    if (this.held) {
      this.retryAt = null;
      this.setState("down");
      return;
    }
    const base = Math.min(MAX_DELAY_MS, 500 * 2 ** this.attempts);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempts += 1;
    this.retryAt = Date.now() + delay;
    this.setState("down");
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.socket || this.held || this.state === "unauthorised") return;
    this.connect();
  }

  close() {
    this.held = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000);
    }
  }

  // Test and support hooks: drop the connection as a network failure would, optionally
  // holding it down until release(), to prove that nothing sent meanwhile is lost.
  drop({ hold = false } = {}) {
    this.held = hold;
    if (this.socket) this.socket.close(4000, "dropped by the page");
  }

  release() {
    this.held = false;
    this.attempts = 0;
    if (!this.socket) this.connect();
  }
}

// A status light in the header and a banner across the page while the connection is down.
export function mountConnectionIndicator(live, indicator, banner) {
  const render = () => {
    indicator.dataset.state = live.state;
    banner.dataset.state = live.state;
    if (live.state === "live") {
      replace(indicator, h("span", { class: "dot", "aria-hidden": "true" }), "Live");
      banner.hidden = true;
      return;
    }
    if (live.state === "connecting") {
      replace(indicator, h("span", { class: "dot", "aria-hidden": "true" }), "Connecting…");
      banner.hidden = true;
      return;
    }
    if (live.state === "unauthorised") {
      replace(indicator, h("span", { class: "dot", "aria-hidden": "true" }), "Signed out");
      return;
    }
    if (live.state === "replaced" || live.state === "refused") {
      replace(indicator, h("span", { class: "dot", "aria-hidden": "true" }), "Closed");
      if (live.state === "replaced") {
        replace(
          banner,
          h("strong", {}, "No live updates here."),
          " The console is open in too many other tabs or windows, and a newer one took this one's place. ",
          h("button", { type: "button", class: "link", onclick: () => live.reconnectNow(), testid: "reconnect-now" }, "Use this page"),
        );
      } else {
        replace(
          banner,
          h("strong", {}, "No live updates."),
          " The server does not accept live updates for a page at this address (TELLONCE_ALLOWED_ORIGINS).",
        );
      }
      banner.hidden = false;
      return;
    }
    const since = live.downSince ? ` since ${clock(live.downSince)}` : "";
    let next = "Reconnecting…";
    if (live.state === "down" && live.retryAt) {
      const s = Math.max(0, Math.ceil((live.retryAt - Date.now()) / 1000));
      next = s > 0 ? `Reconnecting in ${s}s…` : "Reconnecting…";
    } else if (live.state === "down" && live.held) {
      next = "Waiting to reconnect…";
    }
    replace(indicator, h("span", { class: "dot", "aria-hidden": "true" }), "Offline");
    replace(
      banner,
      h("strong", {}, `Connection lost${since}.`),
      ` ${next} Nothing is lost: missed updates are replayed on reconnect. `,
      h("button", { type: "button", class: "link", onclick: () => live.reconnectNow(), testid: "reconnect-now" }, "Retry now"),
    );
    banner.hidden = false;
  };
  live.subscribe(render);
  setInterval(() => {
    if (live.state === "down") render();
  }, 1000);
}
