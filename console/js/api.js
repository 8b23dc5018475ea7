// The HTTP side of the contract: Bearer token, JSON in and out, {"detail"} errors.

import { noteServerDate } from "./format.js";
import { getSession, signOutTo } from "./session.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : describe(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).slice(1).join(".")}: ${d.msg}` : String(d))).join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

export async function api(path, { method = "GET", body, form } = {}) {
  const session = getSession();
  const headers = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  let payload;
  if (form) {
    payload = new URLSearchParams(form);
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  const sentAt = Date.now();
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "The server cannot be reached");
  }
  noteServerDate(response.headers.get("Date"), sentAt, Date.now());
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && session && !form) signOutTo("expired");
    throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : data);
  }
  return data;
}

export async function signIn(username, password) {
  return api("/api/auth/token", { method: "POST", form: { username, password } });
}
