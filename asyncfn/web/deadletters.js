// The dead-letters view: tasks that ended Failed or Expired after all their retries (functions
// with async.on_dead_letter), each with a one-click rerun.

import {
  api, badge, errorBox, h, poll, qs, shortId, showError, timeCell,
} from "./ui.js";

function errorText(error) {
  if (!error) return "";
  return error.type ? `${error.type}: ${error.message || ""}` : JSON.stringify(error);
}

export function deadLettersView(root, params) {
  const fn = params.get("function") || "";
  const error = errorBox();
  const actionError = errorBox();
  const fnSelect = h("select", { id: "dl-function", "data-testid": "dl-filter-function" },
    h("option", { value: "" }, "All functions"));
  if (fn) fnSelect.append(h("option", { value: fn }, fn));
  fnSelect.value = fn;
  fnSelect.addEventListener("change", () => {
    location.hash = `#/dead-letters${qs({ function: fnSelect.value })}`;
  });
  const tbody = h("tbody");
  const table = h("table", { class: "grid", "data-testid": "dead-letters-table" },
    h("caption", { class: "sr-only" }, "Dead letters, newest first"),
    h("thead", {}, h("tr", {}, ...["Task", "Function", "Status", "Attempts", "Dead since", "Error", "Rerun"]
      .map((c) => h("th", { scope: "col" }, c)))),
    tbody);
  const empty = h("p", { class: "muted", hidden: true, "data-testid": "dead-letters-empty" },
    "No dead letters. Functions keep them when their config has async.on_dead_letter.");
  root.replaceChildren(h("h1", {}, "Dead letters"),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "dl-function" }, "Function"), fnSelect),
    error, actionError, table, empty);

  api("/v1/functions").then(({ items }) => {
    const names = items.map((f) => f.name);
    if (fn && !names.includes(fn)) names.push(fn);
    fnSelect.replaceChildren(h("option", { value: "" }, "All functions"),
      ...names.sort().map((n) => h("option", { value: n }, n)));
    fnSelect.value = fn;
  }).catch(() => {});

  const pending = new Set();
  const rerunCell = (item) => {
    if (item.rerun_as) {
      return h("a", { href: `#/task/${encodeURIComponent(item.rerun_as)}`, "data-testid": "dl-rerun-link",
        title: item.rerun_as }, `rerun as ${shortId(item.rerun_as)}`);
    }
    const button = h("button", { type: "button", class: "secondary", "data-testid": "dl-rerun",
      disabled: pending.has(item.task_id) }, "Rerun");
    button.addEventListener("click", async () => {
      pending.add(item.task_id);
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      showError(actionError, null);
      try {
        const answer = await api(`/v1/dead-letters/${encodeURIComponent(item.task_id)}:rerun`, { method: "POST" });
        button.replaceWith(h("a", { href: `#/task/${encodeURIComponent(answer.task_id)}`,
          "data-testid": "dl-rerun-link", title: answer.task_id }, `rerun as ${shortId(answer.task_id)}`));
      } catch (err) {
        showError(actionError, err);
        button.disabled = false;
      } finally {
        pending.delete(item.task_id);
        button.removeAttribute("aria-busy");
      }
    });
    return button;
  };

  return poll(async () => {
    if (pending.size) return;
    try {
      const page = await api(`/v1/dead-letters${qs({ function: fn, limit: 100 })}`);
      showError(error, null);
      empty.hidden = page.items.length > 0;
      tbody.replaceChildren(...page.items.map((item) => h("tr",
        { "data-testid": "dead-letter-row", "data-task-id": item.task_id },
        h("td", { class: "mono" }, h("a", { href: `#/task/${encodeURIComponent(item.task_id)}`, title: item.task_id },
          shortId(item.task_id))),
        h("td", {}, item.function),
        h("td", {}, badge(item.status)),
        h("td", { class: "num" }, item.attempts ?? "—"),
        h("td", {}, timeCell(item.at)),
        h("td", { class: "err clip" }, errorText(item.error)),
        h("td", {}, rerunCell(item)))));
    } catch (err) {
      showError(error, err);
    }
  }, 2000);
}
