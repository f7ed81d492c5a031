// The functions view: every function with its counts, instances, latency and state.

import {
  COUNT_COLUMNS, FALLBACK_COUNT_LIMIT, api, errorBox, fmtMs, h, poll, qs, showError,
} from "./ui.js";

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

/** "acme: 2/2 running, 130 waiting" of the first concurrency key's busiest value. */
function busiestKey(st) {
  const limit = st && st.keys && st.keys[0];
  const top = limit && limit.busiest && limit.busiest[0];
  if (!top) return "—";
  return `${limit.key}=${top.value || '""'}: ${top.running}/${limit.limit} running, ${top.waiting} waiting`;
}

export function functionsView(root) {
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
      h("th", { scope: "col" }, "Run latency"),
      h("th", { scope: "col" }, "Busiest key"))),
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
          h("td", {}, latencyText(st && st.latency_ms)),
          h("td", { class: "mono clip", "data-testid": "busiest-key" }, busiestKey(st)));
      }));
    } catch (err) {
      showError(error, err);
    }
  }, 2000);
}

