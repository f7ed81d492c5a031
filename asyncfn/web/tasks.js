// The tasks view: the task list with its filters and pages.

import {
  STATUSES, api, append, badge, errorBox, fmtMs, h, poll, qs, shortId, showError, timeCell,
} from "./ui.js";
import { bulkPanel } from "./operations.js";

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

export function tasksView(root, params) {
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
  const bulk = bulkPanel(filters);
  root.replaceChildren(h("h1", {}, "Tasks"), form, bulk.panel, error, table, empty, pager);

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
  const stopPolling = poll(load, 1000);
  return () => {
    stopPolling();
    bulk.close();
  };
}

