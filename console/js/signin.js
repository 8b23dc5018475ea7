// Sign-in: the OAuth2 password flow, then the page that matches the role.

import { ApiError, signIn } from "./api.js";
import { byTestId } from "./dom.js";
import { getSession, pageFor, saveSession } from "./session.js";

const existing = getSession();
if (existing) location.replace(pageFor(existing.user.role));

const form = byTestId("signin-form");
const error = byTestId("signin-error");
const notice = byTestId("signin-notice");
const submit = byTestId("signin-submit");

const reason = new URLSearchParams(location.search).get("reason");
if (reason === "expired") {
  notice.textContent = "Your session has ended. Please sign in again.";
  notice.hidden = false;
} else if (reason === "signed_out") {
  notice.textContent = "You are signed out.";
  notice.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    error.textContent = "Enter your username and password.";
    error.hidden = false;
    return;
  }
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    const result = await signIn(username, password);
    saveSession(result.access_token, result.user);
    location.replace(pageFor(result.user.role));
  } catch (err) {
    error.textContent =
      err instanceof ApiError && err.status === 401
        ? "Wrong username or password."
        : `Sign-in failed: ${err.message}`;
    error.hidden = false;
    form.password.select();
  } finally {
    submit.disabled = false;
    submit.textContent = "Sign in";
  }
});
