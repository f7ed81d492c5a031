// Shared by the dashboard's views: DOM building, the API with the tab's key, formatting, polling.
// Every piece of task data reaches the page through textContent or attributes, never innerHTML.

export const STATUSES = [
  "Enqueued", "Running", "Retrying", "Suspended", "Stopping",
  "Succeeded", "Failed", "Stopped", "Expired", "Invalid",
];
export const TERMINAL = new Set(["Succeeded", "Failed", "Stopped", "Expired", "Invalid"]);
export const COUNT_COLUMNS = ["Enqueued", "Running", "Succeeded", "Failed"];
export const FALLBACK_COUNT_LIMIT = 1000;

// ---------------------------------------------------------------- DOM and HTTP helpers

/** Builds an element; children are nodes or strings (always text nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------- API key (this tab only)

let onUnauthorized = () => {};

/** What a 401 to the stored key does (the router shows its sign-in panel). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// The key lives in sessionStorage: it goes away with the tab, and is never logged or put in a URL.
export const KEY_ITEM = "asyncfn.apiKey";

export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
}

export function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_ITEM, key);
    else sessionStorage.removeItem(KEY_ITEM);
  } catch { /* storage disabled: nothing to keep */ }
  syncSignOut();
}

/** "Sign out" in the top bar shows only while a key is stored. */
export function syncSignOut() {
  document.querySelector("[data-testid=sign-out]").hidden = !storedKey();
}

/** Request headers with `Authorization: Bearer <key>` when a key is stored. */
export function authHeaders(key, headers = {}) {
  return key ? { ...headers, Authorization: `Bearer ${key}` } : { ...headers };
}

/** The ApiError of a failed response; a 401 to the key in use asks the user for a key. */
export function failure(resp, text, key) {
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const err = body && body.error;
  const error = new ApiError(
    resp.status,
    err ? err.code : `http_${resp.status}`,
    err ? err.message : (text || resp.statusText),
  );
  // A 401 to a key that was replaced meanwhile is stale: the new key gets its own answer.
  if (resp.status === 401 && key === storedKey()) {
    storeKey(null);
    onUnauthorized(error);
  }
  return error;
}

export async function api(path, options = {}) {
  const key = storedKey();
  const headers = authHeaders(key, { Accept: "application/json", ...options.headers });
  const resp = await fetch(path, { ...options, headers });
  const text = await resp.text();
  if (!resp.ok) throw failure(resp, text, key);
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function timeCell(iso) {
  return h("time", { datetime: iso || undefined, title: iso || undefined }, fmtTime(iso));
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function badge(status, testid = "task-status") {
  return h("span", { class: `badge s-${String(status).toLowerCase()}`, "data-testid": testid }, status);
}

export function shortId(id) {
  return id.length > 14 ? `${id.slice(0, 12)}…` : id;
}

/** A poller that runs `fn` now and every `ms` after the previous run ended, until stopped. */
export function poll(fn, ms) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export function errorBox(err) {
  const box = h("div", { class: "alert", role: "alert", "data-testid": "error" });
  if (err) box.append(err.code ? `${err.code}: ${err.message}` : String(err.message || err));
  else box.hidden = true;
  return box;
}

export function showError(box, err) {
  box.replaceChildren(err ? (err.code ? `${err.code}: ${err.message}` : String(err)) : "");
  box.hidden = !err;
}

