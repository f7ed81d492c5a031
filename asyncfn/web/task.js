// The task view: one task's details, timeline, payload and result, events, deliveries, live logs
// and its actions.

import {
  TERMINAL, api, append, authHeaders, badge, errorBox, failure, fmtMs, h, poll, qs, showError,
  storedKey, timeCell,
} from "./ui.js";

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

/** "concurrency acme, eu · debounce d1 · throttle t" of a task's key values. */
function keysText(keys) {
  const parts = [];
  if (keys.concurrency && keys.concurrency.length) parts.push(`concurrency ${keys.concurrency.join(", ")}`);
  if (keys.debounce !== null && keys.debounce !== undefined) parts.push(`debounce ${keys.debounce}`);
  if (keys.throttle !== null && keys.throttle !== undefined) parts.push(`throttle ${keys.throttle}`);
  return parts.join(" · ") || "—";
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

export function taskView(root, id) {
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
      ...(task.keys ? [["Keys", keysText(task.keys), "task-keys"]] : []),
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

