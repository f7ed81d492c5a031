// asyncfn dashboard: functions, tasks, one task, dead letters and bulk operations, over the v1 API. No build step.
// This module is the router and the top bar; each view has its own module.

import {
  setUnauthorizedHandler, api, errorBox, h, showError, storeKey, syncSignOut,
} from "./ui.js";
import { deadLettersView } from "./deadletters.js";
import { functionsView } from "./functions.js";
import { operationsView } from "./operations.js";
import { taskView } from "./task.js";
import { tasksView } from "./tasks.js";

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
  } else if (path === "/dead-letters") {
    section = "dead-letters";
    document.title = "Dead letters · asyncfn";
    cleanup = deadLettersView(root, params);
  } else if (path === "/operations") {
    section = "operations";
    document.title = "Operations · asyncfn";
    cleanup = operationsView(root);
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

setUnauthorizedHandler(showSignIn);
window.addEventListener("hashchange", route);
document.querySelector("[data-testid=sign-out]").addEventListener("click", signOut);
syncSignOut();
loadNode();
route();

