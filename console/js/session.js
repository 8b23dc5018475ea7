// The signed-in user's token lives in sessionStorage: one tab, gone when the tab closes.

const KEY = "tellonce.session";

export function getSession() {
  try {
    const raw = sessionStorage.getItem(KEY);
    const session = raw ? JSON.parse(raw) : null;
    return session && session.token && session.user ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(token, user) {
  sessionStorage.setItem(KEY, JSON.stringify({ token, user }));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

export function pageFor(role) {
  return role === "supervisor" ? "/supervisor.html" : "/agent.html";
}

// Send to the sign-in page unless signed in with the role this page is for.
export function requireRole(role) {
  const session = getSession();
  if (!session) {
    location.replace("/");
    return null;
  }
  if (session.user.role !== role) {
    location.replace(pageFor(session.user.role));
    return null;
  }
  return session;
}

export function signOutTo(reason) {
  clearSession();
  location.replace(reason ? `/?reason=${encodeURIComponent(reason)}` : "/");
}

// Ends the token on the server (every tab of this user, on every instance) and takes the agent
// off the phones; signing out still works when the server does not answer.
export async function signOut() {
  const session = getSession();
  if (!session) return;
  try {
    await fetch("/api/auth/sign-out", { method: "POST", headers: { Authorization: `Bearer ${session.token}` } });
  } catch {
    // The token ends by itself at its expiry.
  }
}
