// Bulk operations: the panel that stops, reruns or purges every task a tasks-view filter matches
// (a dry run counts them first), and the operations view that follows each one's progress.

import {
  api, errorBox, h, poll, showError, timeCell,
} from "./ui.js";

const KINDS = [
  { kind: "stop", label: "Stop" },
  { kind: "rerun", label: "Rerun" },
  { kind: "purge", label: "Purge" },
];

/** The bulk filter of a tasks-view filter; null when it names nothing (no bulk on everything). */
export function bulkFilter(filters) {
  const filter = {};
  if (filters.function) filter.function = filters.function;
  if (filters.status) filter.status = [filters.status];
  if (filters.since) filter.created_after = filters.since;
  if (filters.until) filter.created_before = filters.until;
  return Object.keys(filter).length ? filter : null;
}

function handled(op) {
  return (op.done || 0) + (op.skipped || 0);
}

function progressOf(op) {
  const total = op.total || 0;
  return h("span", { class: "op-progress" },
    h("progress", { max: Math.max(total, 1), value: total ? handled(op) : 1, "data-testid": "op-progress" }),
    h("span", { class: "muted", "data-testid": "op-counts" },
      `${op.done} done · ${op.skipped} skipped · ${total} matched`));
}

/** Buttons that act on every task `filters` matches: dry run → confirm → follow progress. */
export function bulkPanel(filters) {
  const filter = bulkFilter(filters);
  const error = errorBox();
  const status = h("div", { class: "bulk-status", "data-testid": "bulk-status", "aria-live": "polite" });
  let stopFollowing = () => {};
  const buttons = KINDS.map(({ kind, label }) => h("button", {
    type: "button", class: "secondary", "data-testid": `bulk-${kind}`, disabled: !filter,
    title: filter ? `${label} every task the filter matches` : "choose a function, status or time range first",
  }, `${label} matching…`));

  const follow = (op) => {
    stopFollowing();
    const render = (o) => status.replaceChildren(
      h("span", { "data-testid": "bulk-op-status", "data-status": o.status }, `${o.kind} ${o.status}`), " ",
      progressOf(o), " ", h("a", { href: "#/operations" }, "operations"));
    render(op);
    stopFollowing = poll(async () => {
      try {
        const o = await api(`/v1/operations/${encodeURIComponent(op.id)}`);
        render(o);
        if (o.status !== "running") stopFollowing();
      } catch (err) {
        showError(error, err);
      }
    }, 500);
  };

  buttons.forEach((button, i) => button.addEventListener("click", async () => {
    const { kind, label } = KINDS[i];
    showError(error, null);
    try {
      const dry = await api(`/v1/tasks:${kind}`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ filter, dry_run: true }),
      });
      const confirm = h("button", { type: "button", "data-testid": "bulk-confirm" }, `${label} ${dry.count} tasks`);
      const cancel = h("button", { type: "button", class: "secondary", "data-testid": "bulk-cancel" }, "Cancel");
      cancel.addEventListener("click", () => status.replaceChildren());
      confirm.addEventListener("click", async () => {
        confirm.disabled = true;
        try {
          const answer = await api(`/v1/tasks:${kind}`, {
            method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ filter, dry_run: false }),
          });
          follow(answer.operation);
        } catch (err) {
          showError(error, err);
          confirm.disabled = false;
        }
      });
      status.replaceChildren(h("span", { "data-testid": "bulk-count" },
        `${dry.count} tasks match this filter now.`), " ", confirm, " ", cancel);
    } catch (err) {
      showError(error, err);
    }
  }));
  const panel = h("div", { class: "bulk", role: "group", "aria-label": "Bulk actions" }, ...buttons, status, error);
  return { panel, close: () => stopFollowing() };
}

export function operationsView(root) {
  const error = errorBox();
  const tbody = h("tbody");
  const table = h("table", { class: "grid", "data-testid": "operations-table" },
    h("caption", { class: "sr-only" }, "Bulk operations, newest first"),
    h("thead", {}, h("tr", {}, ...["Operation", "Kind", "Status", "Progress", "Filter", "Created", "Finished"]
      .map((c) => h("th", { scope: "col" }, c)))),
    tbody);
  const empty = h("p", { class: "muted", hidden: true }, "No bulk operations yet. Start one from the Tasks view.");
  root.replaceChildren(h("h1", {}, "Operations"), error, table, empty);
  return poll(async () => {
    try {
      const page = await api("/v1/operations?limit=50");
      showError(error, null);
      empty.hidden = page.items.length > 0;
      tbody.replaceChildren(...page.items.map((op) => h("tr",
        { "data-testid": "operation-row", "data-operation-id": op.id, "data-status": op.status },
        h("td", { class: "mono" }, op.id),
        h("td", {}, op.kind),
        h("td", { class: op.status === "failed" ? "err" : "" }, op.status, op.error ? `: ${op.error}` : ""),
        h("td", {}, progressOf(op)),
        h("td", { class: "mono clip" }, JSON.stringify(op.filter)),
        h("td", {}, timeCell(op.created_at)),
        h("td", {}, timeCell(op.finished_at)))));
    } catch (err) {
      showError(error, err);
    }
  }, 1000);
}
