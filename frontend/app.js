// The tracked-accounts dashboard: sign-in, the list (paged), add / rename / renumber / delete,
// the usage meter, and the plan switcher (plan check first, then the change through Kinde).
import { config } from "./config.js";
import { Api, ApiError, StandIn, sentence } from "./api.js";

const $ = (id) => document.getElementById(id);
const SESSION_KEY = "planguard.session";
const pageSize = (() => {
  const asked = Number(new URLSearchParams(location.search).get("pageSize"));
  return Number.isInteger(asked) && asked >= 1 && asked <= 100 ? asked : config.pageSize;
})();

const state = { session: null, accounts: [], nextCursor: null, usage: null, loading: false };

// -- small DOM helpers --------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

function notice(text, kind = "") {
  const box = $("notice");
  box.textContent = text || "";
  box.className = `banner ${kind}`;
  show(box, Boolean(text));
}

function setFieldErrors(form, errors, prefix) {
  // errors: [{field, message}] from VALIDATION_ERROR; fields "name" and "accountNumber"
  for (const input of form.querySelectorAll("input")) {
    const box = $(`${input.id}-error`);
    const found = errors.filter((e) => e.field === input.name || e.field === `body.${input.name}`);
    const label = input.name === "name" ? "Name" : "Account number";
    if (box) box.textContent = found.map((e) => `${label} ${e.message}.`).join(" ");
    if (found.length) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  const first = form.querySelector("[aria-invalid=true]");
  if (first) first.focus();
  return prefix;
}

function clearErrors(form, formError) {
  setFieldErrors(form, [], null);
  if (formError) formError.textContent = "";
}

function jwtSubject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.sub === "string" ? claims.sub : null;
  } catch {
    return null;
  }
}

// -- session ------------------------------------------------------------------------------------
function saveSession(session) {
  state.session = session;
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return saved && typeof saved.token === "string" ? saved : null;
  } catch {
    return null;
  }
}

function signOut(message) {
  saveSession(null);
  state.accounts = [];
  state.nextCursor = null;
  state.usage = null;
  renderShell();
  if (message) $(StandIn.available() ? "dev-signin-error" : "token-signin-error").textContent = message;
}

// An API error anywhere: 401 ends the session; everything else becomes a sentence.
function handle(error, target) {
  if (!(error instanceof ApiError)) throw error;
  if (error.code === "UNAUTHORIZED") {
    signOut(sentence(error));
    return true;
  }
  if (error.code === "OFFLINE") updateOnline();
  if (target) target.textContent = sentence(error);
  else notice(sentence(error), "banner-error");
  return false;
}

function renderShell() {
  const session = state.session;
  show($("signin"), !session);
  show($("dashboard"), Boolean(session));
  show($("session"), Boolean(session));
  if (!session) {
    $(StandIn.available() ? "dev-user" : "token-input").focus();
    return;
  }
  $("session-user").textContent = session.user || "signed in";
  $("session-plan").textContent = session.plan ? `Plan: ${session.plan}` : "Plan: see Kinde";
  show($("apply-after-field"), session.dev);
}

async function startDashboard() {
  renderShell();
  notice("");
  await Promise.all([loadAccounts(true), refreshUsage()]);
  await checkPlan();
}

// -- usage --------------------------------------------------------------------------------------
async function refreshUsage() {
  try {
    const body = await Api.usage(state.session.token);
    renderUsage(body.tracked_accounts);
  } catch (error) {
    handle(error);
  }
}

function renderUsage(usage) {
  state.usage = usage;
  const { used, limit, limitSource } = usage;
  const noun = (n) => (n === 1 ? "tracked account" : "tracked accounts");
  let text;
  if (limit === null && limitSource === "unavailable") {
    text = `${used} ${noun(used)} (your limit cannot be checked right now)`;
  } else if (limit === null) {
    text = `${used} ${noun(used)} (unlimited on your plan)`;
  } else {
    text = `${used} of ${limit} ${noun(limit)}`;
  }
  $("usage-text").textContent = text;
  const ratio = limit ? Math.min(1, used / limit) : limit === 0 ? 1 : 0;
  const bar = $("usage-bar");
  bar.style.width = `${Math.round(ratio * 100)}%`;
  const full = limit !== null && used >= limit;
  bar.classList.toggle("full", full);
  const hold = $("usage-hold");
  hold.textContent =
    limitSource === "hold"
      ? `A plan downgrade is in progress: you can keep at most ${limit} ${noun(limit)} until Kinde completes it.`
      : "";
  show(hold, limitSource === "hold");
  const reached = $("usage-limit");
  // the seed's words, as the API's LIMIT_REACHED says them
  reached.textContent = full
    ? `You’ve reached your tracked accounts limit (${limit}). Remove one or upgrade your plan to add more.`
    : "";
  show(reached, full);
}

// -- the list -----------------------------------------------------------------------------------
async function loadAccounts(fresh) {
  const list = $("accounts");
  const status = $("list-status");
  if (fresh) {
    state.accounts = [];
    state.nextCursor = null;
  }
  state.loading = true;
  list.setAttribute("aria-busy", "true");
  status.textContent = fresh ? "Loading your accounts…" : "Loading more accounts…";
  $("load-more").disabled = true;
  try {
    const page = await Api.listAccounts(state.session.token, pageSize, fresh ? null : state.nextCursor);
    state.accounts.push(...page.items);
    state.nextCursor = page.nextCursor;
    if (page.usage) renderUsage(page.usage);
    status.textContent = "";
  } catch (error) {
    status.textContent = "";
    if (handle(error, status)) return;
  } finally {
    state.loading = false;
    list.removeAttribute("aria-busy");
    $("load-more").disabled = false;
  }
  renderAccounts();
}

function renderAccounts() {
  const list = $("accounts");
  list.replaceChildren(...state.accounts.map(accountRow));
  show($("load-more"), Boolean(state.nextCursor));
  if (!state.accounts.length && !$("list-status").textContent) {
    $("list-status").textContent = "No tracked accounts yet. Add your first one above.";
  } else if (state.accounts.length && $("list-status").textContent.startsWith("No tracked")) {
    $("list-status").textContent = "";
  }
}

function accountRow(account) {
  const row = el("li", { class: "account", "data-id": account.id });
  const view = el(
    "div",
    { class: "account-view" },
    el(
      "div",
      { class: "account-text" },
      el("span", { class: "account-name", text: account.name }),
      el("span", { class: "account-number" }, el("span", { class: "visually-hidden", text: "Account number " }), account.accountNumber),
    ),
    el(
      "div",
      { class: "account-actions" },
      el("button", { type: "button", class: "edit", "aria-label": `Edit ${account.name}`, text: "Edit", onclick: () => editRow(row, account) }),
      el("button", { type: "button", class: "danger delete", "aria-label": `Delete ${account.name}`, text: "Delete", onclick: (e) => deleteAccount(account, e.currentTarget) }),
    ),
  );
  row.append(view, el("p", { class: "error row-error", role: "alert" }));
  return row;
}

function editRow(row, account) {
  const id = account.id;
  const form = el(
    "form",
    { class: "row-form edit-form", novalidate: true, "aria-label": `Edit ${account.name}` },
    el(
      "div",
      { class: "field" },
      el("label", { for: `name-${id}`, text: "Name" }),
      el("input", { id: `name-${id}`, name: "name", value: account.name, autocomplete: "off", "aria-describedby": `name-${id}-error` }),
      el("p", { id: `name-${id}-error`, class: "error field-error" }),
    ),
    el(
      "div",
      { class: "field" },
      el("label", { for: `number-${id}`, text: "Account number" }),
      el("input", { id: `number-${id}`, name: "accountNumber", value: account.accountNumber, autocomplete: "off", spellcheck: "false", "aria-describedby": `number-${id}-error` }),
      el("p", { id: `number-${id}-error`, class: "error field-error" }),
    ),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "submit", class: "primary", text: "Save" }),
      el("button", { type: "button", text: "Cancel", onclick: () => closeEdit() }),
    ),
  );
  const closeEdit = (updated) => {
    const fresh = accountRow(updated || account);
    row.replaceWith(fresh);
    fresh.querySelector(".edit").focus();
  };
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeEdit();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rowError = row.querySelector(".row-error");
    clearErrors(form, rowError);
    const changes = {};
    const name = form.elements.name.value;
    const number = form.elements.accountNumber.value;
    if (name !== account.name) changes.name = name;
    if (number !== account.accountNumber) changes.accountNumber = number;
    if (!Object.keys(changes).length) return closeEdit();
    const submit = form.querySelector("[type=submit]");
    submit.disabled = true;
    try {
      const updated = await Api.updateAccount(state.session.token, id, changes);
      state.accounts = state.accounts.map((a) => (a.id === id ? updated : a));
      closeEdit(updated);
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && error.code === "VALIDATION_ERROR") {
        setFieldErrors(form, error.body.fields || []);
        rowError.textContent = sentence(error);
      } else if (error instanceof ApiError && error.code === "DUPLICATE_ACCOUNT_NUMBER") {
        setFieldErrors(form, [{ field: "accountNumber", message: "is already tracked" }]);
        rowError.textContent = sentence(error);
      } else if (error instanceof ApiError && error.code === "NOT_FOUND") {
        handle(error);
        await loadAccounts(true);
      } else {
        handle(error, rowError);
      }
    }
  });
  row.querySelector(".account-view").replaceWith(form);
  form.elements.name.focus();
}

async function deleteAccount(account, button) {
  button.disabled = true;
  notice("");
  const rows = [...$("accounts").children];
  const index = rows.findIndex((r) => r.dataset.id === account.id);
  try {
    await Api.deleteAccount(state.session.token, account.id);
    state.accounts = state.accounts.filter((a) => a.id !== account.id);
    renderAccounts();
    $("plan-result").replaceChildren();
    notice(`Deleted “${account.name}”.`);
    const next = $("accounts").children[Math.min(index, state.accounts.length - 1)];
    (next ? next.querySelector(".delete") : $("list-title")).focus();
  } catch (error) {
    button.disabled = false;
    if (error instanceof ApiError && error.code === "NOT_FOUND") {
      handle(error);
      await loadAccounts(true);
    } else {
      handle(error, rows[index] && rows[index].querySelector(".row-error"));
    }
  }
  await refreshUsage();
  await checkPlan();
}

async function addAccount(event) {
  event.preventDefault();
  const form = $("add-form");
  const formError = $("add-error");
  clearErrors(form, formError);
  notice("");
  let refused = null;
  const button = $("add-button");
  button.disabled = true;
  button.textContent = "Adding…";
  try {
    const account = await Api.addAccount(state.session.token, {
      name: form.elements.name.value,
      accountNumber: form.elements.accountNumber.value,
    });
    if (!state.nextCursor) state.accounts.push(account);
    renderAccounts();
    $("plan-result").replaceChildren();
    form.reset();
    notice(`Added “${account.name}”.`);
    form.elements.name.focus();
  } catch (error) {
    if (error instanceof ApiError && error.code === "VALIDATION_ERROR") {
      setFieldErrors(form, error.body.fields || []);
      formError.textContent = sentence(error);
    } else if (error instanceof ApiError && error.code === "DUPLICATE_ACCOUNT_NUMBER") {
      setFieldErrors(form, [{ field: "accountNumber", message: "is already tracked" }]);
      formError.textContent = sentence(error);
    } else if (error instanceof ApiError && error.code === "LIMIT_REACHED") {
      refused = error.message; // shown by the meter, below
    } else {
      handle(error, formError);
    }
  } finally {
    button.disabled = false;
    button.textContent = "Add account";
  }
  await refreshUsage();
  if (refused) {
    // the usage meter turns into the API's own message; re-set so screen readers announce it again
    const box = $("usage-limit");
    box.textContent = "";
    show(box, true);
    requestAnimationFrame(() => (box.textContent = refused));
  }
  await checkPlan();
}

// -- plans --------------------------------------------------------------------------------------
async function checkPlan() {
  if (!state.session) return;
  const plan = $("plan-select").value;
  const box = $("plan-check");
  try {
    const result = await Api.planCheck(state.session.token, plan);
    if (result.allowed) {
      box.replaceChildren(el("p", { class: "ok", text: `You can move to ${plan} now.` }));
    } else {
      box.replaceChildren(el("p", { class: "warn", text: result.hint || result.message || `You cannot move to ${plan} now.` }));
    }
  } catch (error) {
    box.replaceChildren();
    if (error instanceof ApiError && error.code !== "UNAUTHORIZED") {
      box.append(el("p", { class: "error", text: sentence(error) }));
    } else {
      handle(error);
    }
  }
}

function kindeAnswer(answer, plan) {
  const nodes = [];
  if (answer.error) {
    nodes.push(el("p", { class: "error", text: `Kinde could not run the plan check, so your plan did not change: ${answer.error}` }));
  } else if (!answer.allowed) {
    nodes.push(el("p", { class: "denied-title", text: `Kinde denied the change to ${plan}:` }));
    if (answer.message) nodes.push(el("p", { class: "deny-message", text: answer.message }));
    if (answer.reasons && answer.reasons.length) {
      nodes.push(el("ul", { class: "reasons" }, ...answer.reasons.map((r) => el("li", { text: r }))));
    }
    nodes.push(el("p", { class: "muted", text: `You stay on ${answer.plan}.` }));
  } else if (answer.applyAt) {
    const at = new Date(answer.applyAt).toLocaleTimeString();
    nodes.push(el("p", { class: "ok", text: `Kinde accepted the change to ${plan}; it applies at ${at}. Until then you stay on ${answer.plan}.` }));
  } else {
    nodes.push(el("p", { class: "ok", text: `Kinde moved you to ${answer.plan}.` }));
  }
  return nodes;
}

async function changePlan(event) {
  event.preventDefault();
  const plan = $("plan-select").value;
  const result = $("plan-result");
  result.replaceChildren();
  notice("");
  await checkPlan();
  if (!state.session) return;
  if (!state.session.dev || !StandIn.available()) {
    const portal = config.kinde.planPortalUrl;
    result.replaceChildren(
      portal
        ? el("p", {}, "Plan changes happen in Kinde: ", el("a", { href: portal, text: "open your plan settings" }), ".")
        : el("p", { text: "Plan changes happen in Kinde (set kinde.planPortalUrl in config.js to link to it)." }),
    );
    return;
  }
  const button = $("plan-button");
  button.disabled = true;
  button.textContent = "Asking Kinde…";
  try {
    const applyAfter = Math.max(0, Number($("apply-after").value) || 0);
    const answer = await StandIn.changePlan(state.session.user, plan, applyAfter);
    result.replaceChildren(...kindeAnswer(answer, plan));
    saveSession({ ...state.session, plan: answer.plan });
    renderShell();
  } catch (error) {
    if (error instanceof ApiError && error.body && error.body.error && typeof error.body.error === "string") {
      result.replaceChildren(...kindeAnswer(error.body, plan));
    } else if (error instanceof ApiError) {
      result.replaceChildren(el("p", { class: "error", text: error.code === "STANDIN" ? error.message : sentence(error) }));
    } else {
      throw error;
    }
  } finally {
    button.disabled = false;
    button.textContent = "Change plan";
  }
  await refreshUsage();
}

// -- sign-in ------------------------------------------------------------------------------------
async function devSignIn(event) {
  event.preventDefault();
  const error = $("dev-signin-error");
  error.textContent = "";
  const user = $("dev-user").value.trim();
  if (!user) {
    error.textContent = "Enter a user id, e.g. kp_alice.";
    $("dev-user").focus();
    return;
  }
  try {
    const answer = await StandIn.token(user, $("dev-plan").value);
    saveSession({ token: answer.access_token, user, plan: answer.plan, dev: true });
    await startDashboard();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    // the stand-in's own words (e.g. an unknown plan, or no stand-in when make dev trusts a real Kinde)
    error.textContent = err.code === "OFFLINE" || !err.message ? sentence(err) : err.message;
  }
}

async function tokenSignIn(event) {
  event.preventDefault();
  const error = $("token-signin-error");
  const token = $("token-input").value.trim().replace(/^Bearer\s+/i, "");
  if (token.split(".").length !== 3) {
    error.textContent = "That is not an access token: a Kinde access token has three parts separated by dots.";
    $("token-input").focus();
    return;
  }
  error.textContent = "";
  saveSession({ token, user: jwtSubject(token), plan: null, dev: false });
  await startDashboard();
}

// -- online / offline ---------------------------------------------------------------------------
function updateOnline() {
  show($("offline"), !navigator.onLine);
}

function init() {
  for (const select of [$("dev-plan"), $("plan-select")]) {
    select.replaceChildren(...config.plans.map((plan) => el("option", { value: plan, text: plan })));
  }
  $("dev-plan").value = config.plans.includes("free") ? "free" : config.plans[0];
  show($("dev-signin"), StandIn.available());
  $("paste-token").open = !StandIn.available();
  $("token-help").textContent = config.kinde.issuerUrl
    ? `An access token issued by ${config.kinde.issuerUrl} for this API.`
    : "An access token issued by your Kinde business for this API.";
  $("dev-signin").addEventListener("submit", devSignIn);
  $("token-signin").addEventListener("submit", tokenSignIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("add-form").addEventListener("submit", addAccount);
  $("plan-form").addEventListener("submit", changePlan);
  $("plan-select").addEventListener("change", () => {
    $("plan-result").replaceChildren();
    checkPlan();
  });
  $("load-more").addEventListener("click", () => loadAccounts(false));
  window.addEventListener("online", () => {
    updateOnline();
    if (state.session) startDashboard();
  });
  window.addEventListener("offline", updateOnline);
  updateOnline();
  state.session = loadSession();
  if (state.session) startDashboard();
  else renderShell();
  document.body.dataset.ready = "true";
}

init();
