// asyncfn dashboard: functions, tasks and one task, over the v1 HTTP API. No build step.
// Every piece of task data reaches the page through textContent or attributes, never innerHTML.

const STATUSES = [
  "Enqueued", "Running", "Retrying", "Suspended", "Stopping",
  "Succeeded", "Failed", "Stopped", "Expired", "Invalid",
];
const TERMINAL = new Set(["Succeeded", "Failed", "Stopped", "Expired", "Invalid"]);
const COUNT_COLUMNS = ["Enqueued", "Running", "Succeeded", "Failed"];
const FALLBACK_COUNT_LIMIT = 1000;

// ---------------------------------------------------------------- DOM and HTTP helpers

/** Builds an element; children are nodes or strings (always text nodes). */
function h(tag, attrs = {}, ...children) {
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

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------- API key (this tab only)

// The key lives in sessionStorage: it goes away with the tab, and is never logged or put in a URL.
const KEY_ITEM = "asyncfn.apiKey";

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_ITEM, key);
    else sessionStorage.removeItem(KEY_ITEM);
  } catch { /* storage disabled: nothing to keep */ }
  syncSignOut();
}

/** "Sign out" in the top bar shows only while a key is stored. */
function syncSignOut() {
  document.querySelector("[data-testid=sign-out]").hidden = !storedKey();
}

/** Request headers with `Authorization: Bearer <key>` when a key is stored. */
function authHeaders(key, headers = {}) {
  return key ? { ...headers, Authorization: `Bearer ${key}` } : { ...headers };
}

/** The ApiError of a failed response; a 401 to the key in use asks the user for a key. */
function failure(resp, text, key) {
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
    showSignIn(error);
  }
  return error;
}

async function api(path, options = {}) {
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

function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function timeCell(iso) {
  return h("time", { datetime: iso || undefined, title: iso || undefined }, fmtTime(iso));
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

function badge(status, testid = "task-status") {
  return h("span", { class: `badge s-${String(status).toLowerCase()}`, "data-testid": testid }, status);
}

function shortId(id) {
  return id.length > 14 ? `${id.slice(0, 12)}…` : id;
}

/** A poller that runs `fn` now and every `ms` after the previous run ended, until stopped. */
function poll(fn, ms) {
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

function errorBox(err) {
  const box = h("div", { class: "alert", role: "alert", "data-testid": "error" });
  if (err) box.append(err.code ? `${err.code}: ${err.message}` : String(err.message || err));
  else box.hidden = true;
  return box;
}

function showError(box, err) {
  box.replaceChildren(err ? (err.code ? `${err.code}: ${err.message}` : String(err)) : "");
  box.hidden = !err;
}

// ---------------------------------------------------------------- functions view

async function fallbackCounts(name) {
  const counts = {};
  await Promise.all(COUNT_COLUMNS.map(async (status) => {
    const page = await api(`/v1/tasks${qs({ function: name, status, limit: FALLBACK_COUNT_LIMIT })}`);
    counts[status] = page.next_cursor ? `${page.items.length}+` : page.items.length;
  }));
  return { counts, queued: counts.Enqueued, running: counts.Running, instances: null };
}

async function statsOf(name) {
  try {
    return await api(`/v1/functions/${encodeURIComponent(name)}/stats`);
  } catch (err) {
    if (err.status === 404 || err.status === 405) {
      try {
        return await fallbackCounts(name);
      } catch {
        return null;
      }
    }
    return null;
  }
}

/** "p50 12 ms · p95 40 ms" of the run latency (stats may nest it per phase, or not). */
function latencyText(latency) {
  if (!latency) return "—";
  const pick = latency.run || latency.end_to_end || latency;
  const parts = [];
  for (const key of ["p50", "p95"]) {
    if (pick[key] !== undefined && pick[key] !== null) parts.push(`${key} ${fmtMs(pick[key])}`);
  }
  return parts.length ? parts.join(" · ") : "—";
}

function functionsView(root) {
  const error = errorBox();
  const tbody = h("tbody");
  const table = h("table", { class: "grid", "data-testid": "functions-table" },
    h("caption", { class: "sr-only" }, "Functions"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Function"),
      h("th", { scope: "col" }, "Runtime"),
      h("th", { scope: "col" }, "State"),
      ...COUNT_COLUMNS.map((s) => h("th", { scope: "col", class: "num" }, s === "Enqueued" ? "Queued" : s)),
      h("th", { scope: "col", class: "num" }, "Instances"),
      h("th", { scope: "col" }, "Run latency"))),
    tbody);
  const empty = h("p", { class: "muted", hidden: true }, "No functions deployed yet.");
  root.replaceChildren(h("h1", {}, "Functions"), error, table, empty);

  return poll(async () => {
    try {
      const { items } = await api("/v1/functions");
      const stats = await Promise.all(items.map((fn) => statsOf(fn.name)));
      showError(error, null);
      empty.hidden = items.length > 0;
      tbody.replaceChildren(...items.map((fn, i) => {
        const st = stats[i];
        const counts = (st && st.counts) || {};
        const count = (s) => {
          if (!st) return "—";
          if (s === "Enqueued" && st.queued !== undefined && st.queued !== null) return st.queued;
          if (s === "Running" && st.running !== undefined && st.running !== null) return st.running;
          return counts[s] ?? 0;
        };
        const placement = st && st.placement;
        const unplaceable = placement && placement.placeable === false;
        const state = fn.paused ? "paused"
          : !(fn.code_sha256 || fn.runtime === "command") ? "no code"
          : unplaceable ? "unplaceable" : "ready";
        const stateTitle = unplaceable
          ? `no live node has the labels it requires: ${JSON.stringify(placement.requires)}`
          : undefined;
        return h("tr", { "data-testid": "function-row", "data-function": fn.name },
          h("th", { scope: "row" },
            h("a", { href: `#/tasks${qs({ function: fn.name })}` }, fn.name)),
          h("td", {}, fn.runtime),
          h("td", {}, h("span", {
            class: `pill ${state.replace(" ", "-")}`, "data-testid": "function-state", title: stateTitle,
          }, state)),
          ...COUNT_COLUMNS.map((s) => h("td", {
            class: "num", "data-testid": `count-${s.toLowerCase()}`,
          }, count(s))),
          h("td", { class: "num" }, st && st.instances !== null && st.instances !== undefined
            ? (typeof st.instances === "object" ? JSON.stringify(st.instances) : st.instances)
            : "—"),
          h("td", {}, latencyText(st && st.latency_ms)));
      }));
    } catch (err) {
      showError(error, err);
    }
  }, 2000);
}

// ---------------------------------------------------------------- tasks view

function toRfc3339(local) {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function summary(task) {
  if (task.error) return `${task.error.type}: ${task.error.message}`;
  if (task.result !== null && task.result !== undefined) {
    const text = typeof task.result === "string" ? task.result : JSON.stringify(task.result);
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  }
  if (task.progress && task.progress.message) return task.progress.message;
  return "";
}

function tasksView(root, params) {
  const filters = {
    function: params.get("function") || "",
    status: params.get("status") || "",
    since: params.get("since") || "",
    until: params.get("until") || "",
  };
  const cursors = [params.get("cursor") || ""];
  const error = errorBox();

  const fnSelect = h("select", { id: "f-function", name: "function", "data-testid": "filter-function" },
    h("option", { value: "" }, "All functions"));
  if (filters.function) fnSelect.append(h("option", { value: filters.function }, filters.function));
  fnSelect.value = filters.function;
  const statusSelect = h("select", { id: "f-status", name: "status", "data-testid": "filter-status" },
    h("option", { value: "" }, "All statuses"), ...STATUSES.map((s) => h("option", { value: s }, s)));
  statusSelect.value = filters.status;
  const since = h("input", { id: "f-since", type: "datetime-local", "data-testid": "filter-since",
    value: toLocalInput(filters.since) });
  const until = h("input", { id: "f-until", type: "datetime-local", "data-testid": "filter-until",
    value: toLocalInput(filters.until) });

  const apply = () => {
    location.hash = `#/tasks${qs({
      function: fnSelect.value, status: statusSelect.value,
      since: toRfc3339(since.value), until: toRfc3339(until.value),
    })}`;
  };
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("label", { for: "f-function" }, "Function"), fnSelect,
    h("label", { for: "f-status" }, "Status"), statusSelect,
    h("label", { for: "f-since" }, "Since"), since,
    h("label", { for: "f-until" }, "Until"), until,
    h("button", { type: "submit" }, "Apply"),
    h("button", { type: "button", class: "secondary", onclick: () => { location.hash = "#/tasks"; } },
      "Clear"));
  fnSelect.addEventListener("change", apply);
  statusSelect.addEventListener("change", apply);

  const tbody = h("tbody");
  const table = h("table", { class: "grid", "data-testid": "tasks-table" },
    h("caption", { class: "sr-only" }, "Tasks, newest first"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Task"),
      h("th", { scope: "col" }, "Function"),
      h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col", class: "num" }, "Attempt"),
      h("th", { scope: "col" }, "Created"),
      h("th", { scope: "col", class: "num" }, "Duration"),
      h("th", { scope: "col" }, "Result / error"))),
    tbody);
  const empty = h("p", { class: "muted", hidden: true, "data-testid": "tasks-empty" }, "No tasks match.");
  const newer = h("button", { type: "button", class: "secondary", "data-testid": "page-newer" }, "← Newer");
  const older = h("button", { type: "button", class: "secondary", "data-testid": "page-older" }, "Older →");
  const pageInfo = h("span", { class: "muted" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" }, newer, pageInfo, older);
  root.replaceChildren(h("h1", {}, "Tasks"), form, error, table, empty, pager);

  api("/v1/functions").then(({ items }) => {
    const names = items.map((fn) => fn.name);
    if (filters.function && !names.includes(filters.function)) names.push(filters.function);
    fnSelect.replaceChildren(h("option", { value: "" }, "All functions"),
      ...names.sort().map((n) => h("option", { value: n }, n)));
    fnSelect.value = filters.function;
  }).catch(() => {});

  let nextCursor = null;
  const load = async () => {
    try {
      const page = await api(`/v1/tasks${qs({ ...filters, limit: 50, cursor: cursors.at(-1) })}`);
      showError(error, null);
      nextCursor = page.next_cursor;
      empty.hidden = page.items.length > 0;
      tbody.replaceChildren(...page.items.map((t) => h("tr",
        { "data-testid": "task-row", "data-task-id": t.id, "data-status": t.status },
        h("td", { class: "mono" }, h("a", { href: `#/task/${encodeURIComponent(t.id)}`, title: t.id },
          shortId(t.id))),
        h("td", {}, t.function),
        h("td", {}, badge(t.status)),
        h("td", { class: "num" }, `${t.attempt}/${t.max_attempts}`),
        h("td", {}, timeCell(t.created_at)),
        h("td", { class: "num" }, fmtMs(t.duration_ms)),
        h("td", { class: t.error ? "err clip" : "clip" }, summary(t)))));
      newer.disabled = cursors.length <= 1;
      older.disabled = !nextCursor;
      pageInfo.textContent = `page ${cursors.length}`;
    } catch (err) {
      showError(error, err);
    }
  };
  newer.addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); load(); } });
  older.addEventListener("click", () => { if (nextCursor) { cursors.push(nextCursor); load(); } });
  return poll(load, 1000);
}

// ---------------------------------------------------------------- task view

const SEGMENT_OF = {
  Enqueued: "queued", Retrying: "queued", Running: "running", Suspended: "suspended",
  Stopping: "stopping",
};

/** Timeline segments [{kind, label, ms}] from `task.timeline`, else from the events. */
function timelineOf(task) {
  const t = task.timeline;
  if (t) {
    const segs = [];
    const add = (kind, label, ms) => { if (ms) segs.push({ kind, label, ms }); };
    add("queued", "queued", t.queued_ms);
    add("cold", "cold start", t.cold_start_ms);
    (Array.isArray(t.running_ms) ? t.running_ms : [t.running_ms]).forEach((ms, i, all) =>
      add("running", all.length > 1 ? `attempt ${i + 1}` : "running", ms));
    add("suspended", "suspended", t.suspended_ms);
    add("delivering", "delivering", t.delivering_ms);
    return segs;
  }
  const events = task.events || [];
  const segs = [];
  let attempt = 0;
  events.forEach((ev, i) => {
    const kind = SEGMENT_OF[ev.status];
    if (!kind) return;
    const start = Date.parse(ev.at);
    const endIso = i + 1 < events.length ? events[i + 1].at : null;
    const end = endIso ? Date.parse(endIso) : (TERMINAL.has(task.status) ? start : Date.now());
    if (kind === "running") attempt += 1;
    const label = kind === "running" ? `attempt ${attempt}` : kind;
    if (end > start) segs.push({ kind, label, ms: end - start });
  });
  return segs;
}

function timelineBar(task) {
  const segs = timelineOf(task);
  const total = segs.reduce((sum, s) => sum + s.ms, 0);
  if (!total) return h("p", { class: "muted", "data-testid": "timeline" }, "No timeline yet.");
  return h("div", { class: "timeline", "data-testid": "timeline" },
    h("div", { class: "bar", role: "img",
      "aria-label": segs.map((s) => `${s.label} ${fmtMs(s.ms)}`).join(", ") },
    ...segs.map((s) => h("span", {
      class: `seg k-${s.kind}`, style: `flex-grow: ${Math.max(s.ms / total, 0.01)}`,
      title: `${s.label}: ${fmtMs(s.ms)}`,
    }))),
    h("ul", { class: "legend" }, ...segs.map((s) => h("li", {},
      h("span", { class: `dot k-${s.kind}`, "aria-hidden": "true" }), `${s.label} ${fmtMs(s.ms)}`))));
}

function valueBlock(value, testid) {
  if (value === null || value === undefined) return h("p", { class: "muted", "data-testid": testid }, "—");
  if (typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 1
      && typeof value.base64 === "string") {
    return h("div", { "data-testid": testid },
      h("p", { class: "muted" }, `binary, ${Math.floor(value.base64.length * 3 / 4)} bytes (base64)`),
      h("pre", { class: "code" }, value.base64));
  }
  let text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  if (typeof value === "string") {
    try {
      const parsed = JSON.parse(value);
      if (parsed !== null && typeof parsed === "object") text = JSON.stringify(parsed, null, 2);
    } catch { /* plain text */ }
  }
  return h("pre", { class: "code", "data-testid": testid }, text);
}

function detailText(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail !== "object") return String(detail);
  return Object.entries(detail).map(([k, v]) =>
    `${k}=${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`).join(" ");
}

function kv(pairs) {
  return h("dl", { class: "kv" }, ...pairs.flatMap(([k, v, testid]) =>
    [h("dt", {}, k), h("dd", { "data-testid": testid }, v)]));
}

const ACTIONS = [
  { verb: "stop", label: "Stop", when: (s) => ["Enqueued", "Running", "Suspended", "Retrying"].includes(s) },
  { verb: "suspend", label: "Suspend", when: (s) => ["Enqueued", "Running"].includes(s) },
  { verb: "resume", label: "Resume", when: (s) => s === "Suspended" },
  { verb: "rerun", label: "Rerun", when: (s) => TERMINAL.has(s) },
];

/** Reads server-sent events from a fetch body: `onEvent(type, data)` per event, until it ends. */
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let type = "";
  let data = [];
  const onLine = (line) => {
    if (line === "") {
      if (data.length) onEvent(type || "message", data.join("\n"));
      type = "";
      data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    // A trailing "\r" waits for the next chunk: it may be the first half of "\r\n".
    const lines = buffer.split(/\r\n|\r(?!$)|\n/);
    buffer = lines.pop();
    lines.forEach(onLine);
  }
}

/** Follows a task's log over SSE with fetch (EventSource cannot send the API key), resuming
 * after the last line seen when the stream breaks, until the server's `end` event. */
function logStream(id, pre, state) {
  let controller = null;
  let lastSeq = 0;
  let ended = false;
  let retry = null;
  const onLog = (data) => {
    const line = JSON.parse(data);
    if (line.seq <= lastSeq) return;
    lastSeq = line.seq;
    pre.querySelector(".placeholder")?.remove();
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(h("div", { class: `logline ${line.stream === "stderr" ? "stderr" : ""}`,
      "data-testid": "log-line", "data-seq": line.seq },
    h("span", { class: "ts" }, new Date(line.at).toLocaleTimeString()), " ", line.line));
    if (stick) pre.scrollTop = pre.scrollHeight;
  };
  const onEvent = (type, data) => {
    if (ended) return;
    if (type === "log") onLog(data);
    else if (type === "end") {
      ended = true;
      state.textContent = "log complete";
    }
  };
  const open = async () => {
    controller = new AbortController();
    const key = storedKey();
    const url = `/v1/tasks/${encodeURIComponent(id)}/logs${qs({ follow: "true", after: lastSeq || "" })}`;
    try {
      const resp = await fetch(url, {
        headers: authHeaders(key, { Accept: "text/event-stream" }),
        cache: "no-store",
        signal: controller.signal,
      });
      if (!resp.ok) throw failure(resp, await resp.text(), key);
      await readEvents(resp.body, onEvent);
    } catch {
      // Aborted, refused or cut off: a 401 has already asked for a key; else retry below.
    }
    if (!ended) retry = setTimeout(open, 1000);
  };
  open();
  return () => {
    ended = true;
    clearTimeout(retry);
    if (controller) controller.abort();
  };
}

function taskView(root, id) {
  const error = errorBox();
  const actionError = errorBox();
  const head = h("div", { class: "taskhead" });
  const buttons = ACTIONS.map((a) => h("button", {
    type: "button", "data-testid": `action-${a.verb}`, "data-verb": a.verb, disabled: true,
  }, a.label));
  const toolbar = h("div", { class: "actions", role: "group", "aria-label": "Task actions" }, ...buttons);
  const facts = h("section", { "aria-labelledby": "h-facts" });
  const timeline = h("section", { "aria-labelledby": "h-timeline" });
  const io = h("section", { class: "io" });
  const events = h("section", { "aria-labelledby": "h-events" });
  const deliveries = h("section", { "aria-labelledby": "h-deliveries" });
  const logPre = h("div", { class: "log", "data-testid": "log", role: "log", "aria-live": "polite", tabindex: "0" },
    h("span", { class: "placeholder muted" }, "waiting for log lines…"));
  const logState = h("span", { class: "muted" }, "following");
  root.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/tasks" }, "Tasks"), " / ", h("span", { class: "mono" }, id)),
    error, head, toolbar, actionError, facts, timeline, io, events, deliveries,
    h("section", { "aria-labelledby": "h-logs" },
      h("h2", { id: "h-logs" }, "Logs ", logState), logPre));

  let busy = false;
  const render = (task) => {
    head.replaceChildren(
      h("h1", {}, "Task ", h("span", { class: "mono", "data-testid": "task-id" }, task.id)),
      h("div", { class: "status-line" }, badge(task.status),
        h("span", {}, "function ", h("a", { href: `#/tasks${qs({ function: task.function })}` }, task.function)),
        task.progress && task.progress.fraction !== undefined
          ? h("progress", { max: 1, value: task.progress.fraction, title: task.progress.message || "" })
          : null,
        task.progress && task.progress.message ? h("span", { class: "muted" }, task.progress.message) : null));
    buttons.forEach((b, i) => { b.disabled = busy || !ACTIONS[i].when(task.status); });
    facts.replaceChildren(h("h2", { id: "h-facts" }, "Details"), kv([
      ["Attempt", `${task.attempt} of ${task.max_attempts}`, "task-attempt"],
      ["Priority", task.priority],
      ["Created", timeCell(task.created_at)],
      ["Run at", timeCell(task.run_at)],
      ["Started", timeCell(task.started_at)],
      ["Finished", timeCell(task.finished_at)],
      ["Duration", fmtMs(task.duration_ms)],
      ["Resources", task.resources
        ? `cpu ${fmtMs(task.resources.cpu_ms)} · max rss ${task.resources.max_rss_mb ?? "—"} MB` : "—"],
      ["Instance", task.instance_id || "—"],
      ["Node", task.node || "—"],
      ...(task.rerun_of ? [["Rerun of", h("a", { href: `#/task/${encodeURIComponent(task.rerun_of)}` }, task.rerun_of)]] : []),
    ]));
    timeline.replaceChildren(h("h2", { id: "h-timeline" }, "Timeline"), timelineBar(task));
    const outcome = task.error
      ? h("div", { class: "error-block", "data-testid": "task-error" },
        h("p", {}, h("strong", { class: "err", "data-testid": "error-type" }, task.error.type), ": ",
          h("span", { "data-testid": "error-message" }, task.error.message)),
        task.error.traceback
          ? h("details", {}, h("summary", {}, "Traceback"), h("pre", { class: "code" }, task.error.traceback))
          : null)
      : valueBlock(task.result, "task-result");
    io.replaceChildren(
      h("div", {}, h("h2", {}, "Payload"), valueBlock(task.payload, "task-payload")),
      h("div", {}, h("h2", {}, task.error ? "Error" : "Result"), outcome));
    events.replaceChildren(h("h2", { id: "h-events" }, "Events"),
      h("table", { class: "grid", "data-testid": "events-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "At"),
          h("th", { scope: "col" }, "Detail"))),
        h("tbody", {}, ...(task.events || []).map((ev) => h("tr", { "data-testid": "event-row" },
          h("td", {}, badge(ev.status, "event-status")), h("td", {}, timeCell(ev.at)),
          h("td", { class: "mono clip" }, detailText(ev.detail)))))));
    const dels = task.deliveries || [];
    deliveries.hidden = dels.length === 0;
    deliveries.replaceChildren(h("h2", { id: "h-deliveries" }, "Deliveries"),
      h("table", { class: "grid", "data-testid": "deliveries-table" },
        h("thead", {}, h("tr", {}, ...["Type", "Target", "Status", "Attempts", "Delivered", "Last error"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ...dels.map((d) => h("tr", {},
          h("td", {}, d.type), h("td", { class: "mono clip" }, d.target), h("td", {}, d.status),
          h("td", { class: "num" }, d.attempts), h("td", {}, timeCell(d.delivered_at)),
          h("td", { class: "err clip" }, d.last_error || ""))))));
  };

  let stopPolling = () => {};
  const refresh = async () => {
    try {
      const task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
      showError(error, null);
      render(task);
      if (TERMINAL.has(task.status)) stopPolling();
    } catch (err) {
      showError(error, err);
    }
  };

  buttons.forEach((button, i) => button.addEventListener("click", async () => {
    const { verb, label } = ACTIONS[i];
    busy = true;
    buttons.forEach((b) => { b.disabled = true; });
    button.setAttribute("aria-busy", "true");
    button.textContent = `${label}…`;
    showError(actionError, null);
    try {
      const answer = await api(`/v1/tasks/${encodeURIComponent(id)}:${verb}`, { method: "POST" });
      if (verb === "rerun" && answer && answer.task_id) {
        location.hash = `#/task/${encodeURIComponent(answer.task_id)}`;
        return;
      }
    } catch (err) {
      showError(actionError, err);
    } finally {
      busy = false;
      button.removeAttribute("aria-busy");
      button.textContent = label;
    }
    stopPolling();
    stopPolling = poll(refresh, 1000);
  }));

  stopPolling = poll(refresh, 1000);
  const closeLogs = logStream(id, logPre, logState);
  return () => {
    stopPolling();
    closeLogs();
  };
}

// ---------------------------------------------------------------- router and header

let cleanup = () => {};
let signInError = null;

/** Replaces the current view with the sign-in panel (once; later calls update its message). */
function showSignIn(err) {
  if (signInError && signInError.isConnected) {
    showError(signInError, err);
    return;
  }
  cleanup();
  cleanup = () => {};
  const root = document.getElementById("view");
  signInError = errorBox(err);
  const input = h("input", {
    id: "api-key", type: "password", required: true, autocomplete: "off", spellcheck: "false",
    "aria-describedby": "signin-help", "data-testid": "api-key",
  });
  const form = h("form", { class: "signin-form", onsubmit: (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    input.value = "";
    storeKey(key);
    route();
  } },
  h("label", { for: "api-key" }, "API key"), input, h("button", { type: "submit" }, "Use key"));
  signInError.dataset.testid = "signin-error";
  document.title = "Sign in · asyncfn";
  root.replaceChildren(h("section", { class: "signin", "aria-labelledby": "h-signin", "data-testid": "signin" },
    h("h1", { id: "h-signin" }, "This node needs an API key"),
    h("p", { class: "muted", id: "signin-help" },
      "Use the admin key or a tenant key (afk_…). It is kept in this tab only and sent as a Bearer token."),
    signInError, form));
  input.focus();
}

function signOut() {
  storeKey(null);
  route();
}

function route() {
  cleanup();
  const root = document.getElementById("view");
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  const params = new URLSearchParams(query);
  let section = "functions";
  if (path.startsWith("/task/")) {
    section = "tasks";
    const id = decodeURIComponent(path.slice("/task/".length));
    document.title = `Task ${id} · asyncfn`;
    cleanup = taskView(root, id);
  } else if (path === "/tasks") {
    section = "tasks";
    document.title = "Tasks · asyncfn";
    cleanup = tasksView(root, params);
  } else {
    document.title = "Functions · asyncfn";
    cleanup = functionsView(root);
  }
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function loadNode() {
  try {
    const health = await api("/healthz");
    document.querySelector("[data-testid=node-name]").textContent = health.node || "?";
  } catch {
    document.querySelector("[data-testid=node-name]").textContent = "unreachable";
  }
}

window.addEventListener("hashchange", route);
document.querySelector("[data-testid=sign-out]").addEventListener("click", signOut);
syncSignOut();
loadNode();
route();
