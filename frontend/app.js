// The tracked-accounts dashboard: sign-in with Kinde, the list (paged), add / rename / renumber /
// delete, the usage meter, and plan changes (our plan check first, then Kinde's portal). Where the
// API bills organizations, the page works for the organization the member signed in to: its plan,
// its one list (with who added each account), read-only for a member who may not write, a switch to
// the member's other organizations, and the organization's plan page in Kinde's portal.
import { config } from "./config.js";
import { ApiError, connectApi, sentence } from "./api.js";
import { connectKinde } from "./auth.js";

const $ = (id) => document.getElementById(id);
const FROM_PORTAL = "from"; // ?from=kinde-portal: the portal's return URL
const pageSize = () => {
  const asked = Number(new URLSearchParams(location.search).get("pageSize"));
  return Number.isInteger(asked) && asked >= 1 && asked <= 100 ? asked : config.pageSize;
};

// session: {user, plan} while signed in (plan: Kinde's, or the organization's; null when unknown)
// org: undefined until GET /usage first answers; null where the API bills users (user mode);
// else {code, name, plan, canWrite, none} (none: signed in to no organization the API serves)
const state = { session: null, accounts: [], nextCursor: null, usage: null, loading: false, org: undefined };
let kinde = null;
const api = connectApi(() => (kinde ? kinde.accessToken() : undefined));

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

// -- session ------------------------------------------------------------------------------------
// Back to the sign-in screen (Kinde's session may live on: "Sign in" then returns at once).
function showSignIn(message) {
  state.session = null;
  state.accounts = [];
  state.nextCursor = null;
  state.usage = null;
  state.org = undefined;
  renderShell();
  $("signin-error").textContent = message || "";
}

// An API error anywhere: 401 ends the session; everything else becomes a sentence.
function handle(error, target) {
  if (!(error instanceof ApiError)) throw error;
  if (error.code === "UNAUTHORIZED" || error.code === "SIGNED_OUT") {
    showSignIn(sentence(error));
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
    $("sign-in").focus();
    return;
  }
  $("session-user").textContent = session.user || "signed in";
  $("session-plan").textContent = session.plan ? `Plan: ${session.plan}` : "Plan: unknown";
  const org = state.org;
  const working = Boolean(org && !org.none);
  $("session-org").textContent = working ? `for ${org.name}` : "";
  show($("session-org"), working);
  show($("session-plan"), !(org && org.none)); // no organization, no plan
}

async function startDashboard() {
  renderShell();
  const usageRead = refreshUsage(); // it says whether the API bills organizations
  await Promise.all([loadAccounts(true), usageRead, loadPlan(usageRead)]);
  await checkPlan();
}

// -- usage --------------------------------------------------------------------------------------
async function refreshUsage() {
  try {
    const body = await api.usage();
    setOrganization(organizationOf(body));
    renderUsage(body.tracked_accounts);
  } catch (error) {
    if (error instanceof ApiError && error.code === "NO_ORGANIZATION") {
      // e.g. Kinde's default organization: the other organizations are offered, not this one
      const code = kinde.currentOrganization();
      setOrganization({ code, name: code, plan: null, canWrite: false, none: true });
      return;
    }
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
  const excess = usage.excess ?? 0;
  // Over the limit is a state (a plan applied after more were added): say how many to remove.
  // At the limit, the seed's words, as the API's LIMIT_REACHED says them.
  reached.textContent =
    excess > 0
      ? `Your plan allows ${limit} ${noun(limit)}: you have ${excess} more. Remove ${excess} to be within it; you can add again once you are under the limit.`
      : full
        ? `You’ve reached your tracked accounts limit (${limit}). Remove one or upgrade your plan to add more.`
        : "";
  show(reached, full);
}

// -- the organization ---------------------------------------------------------------------------
// Organization mode, from GET /usage's answer: the organization it counts for, that
// organization's plan (Kinde's SDK cannot read it) and whether this member may write. User mode's
// answer names no organization.
function organizationOf(body) {
  const org = body && body.organization;
  if (!org || typeof org.code !== "string") return null;
  return {
    code: org.code,
    name: typeof org.name === "string" && org.name ? org.name : org.code,
    plan: typeof body.plan === "string" ? body.plan : null,
    canWrite: body.canWrite !== false,
    none: false,
  };
}

const writable = () => !state.org || state.org.canWrite;

function setOrganization(org) {
  const before = state.org;
  state.org = org;
  if (!org) return; // user mode: the page as it always was
  renderOrganization();
  const changed = !before || before.canWrite !== org.canWrite || before.code !== org.code;
  if (changed && !state.loading) renderAccounts(); // the rows' controls and who added them
  if (!org.none && (!state.session || state.session.plan !== org.plan)) renderPlan(org.plan);
}

function renderOrganization() {
  const org = state.org;
  const none = org.none;
  show($("org"), true);
  for (const id of ["usage-card", "list-card", "plan-card"]) show($(id), !none);
  show($("add-card"), !none && org.canWrite);
  if (none) {
    $("org-text").textContent = sentence({ code: "NO_ORGANIZATION" });
  } else {
    const named = org.name === org.code ? org.code : `${org.name} (${org.code})`;
    const plan = org.plan ? `on its ${org.plan} plan` : "on a plan Kinde did not name just now";
    $("org-text").textContent =
      `You are working for the organization ${named}, ${plan}. Its members share one list of tracked accounts and one limit.`;
  }
  $("org-readonly").textContent =
    none || org.canWrite
      ? ""
      : `Your role in ${org.name} lets you see its tracked accounts but not add, change or delete them, so those controls are hidden. Ask one of its admins for the permission; it applies once you sign in again.`;
  show($("org-readonly"), !none && !org.canWrite);
  $("list-title").textContent = none ? "Your tracked accounts" : `Tracked accounts of ${org.name}`;
  $("plan-title").textContent = "Change the organization’s plan";
  $("plan-hint").textContent =
    "You change the organization’s plan on Kinde’s plan page (your role there needs Kinde’s billing permission), which checks its usage again; then come back here.";
  renderShell();
  renderSwitch();
}

// The user's other organizations (Kinde's org_codes claim), to sign in to one of them instead.
function renderSwitch() {
  const current = state.org && state.org.code;
  const others = kinde ? kinde.organizations().filter((code) => code !== current) : [];
  const select = $("org-select");
  const chosen = select.value;
  select.replaceChildren(...others.map((code) => el("option", { value: code, text: code })));
  if (others.includes(chosen)) select.value = chosen;
  show($("org-switch"), others.length > 0);
}

async function switchOrganization(event) {
  event.preventDefault();
  const code = $("org-select").value;
  if (!code) return;
  const button = $("org-button");
  button.disabled = true;
  button.textContent = "Opening Kinde…";
  await kinde.switchOrganization(code); // Kinde signs the user in to that organization, then back here
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
    const page = await api.listAccounts(pageSize(), fresh ? null : state.nextCursor);
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
  const status = $("list-status").textContent;
  if (!state.accounts.length && (!status || status.startsWith("No tracked"))) {
    $("list-status").textContent = !state.org
      ? "No tracked accounts yet. Add your first one above."
      : state.org.canWrite
        ? "No tracked accounts yet. Add the first one above."
        : "No tracked accounts yet.";
  } else if (state.accounts.length && $("list-status").textContent.startsWith("No tracked")) {
    $("list-status").textContent = "";
  }
}

// Who added an account, in organization mode (a Kinde user id; "you" for the signed-in member).
function addedBy(account) {
  if (!state.org || typeof account.createdBy !== "string") return null;
  const me = state.session && state.session.user;
  const who = (id) => (id === me ? "you" : id);
  let text = `Added by ${who(account.createdBy)}`;
  if (typeof account.updatedBy === "string" && account.updatedBy !== account.createdBy) {
    text += `, last changed by ${who(account.updatedBy)}`;
  }
  return el("span", { class: "account-by", text });
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
      addedBy(account),
    ),
    writable()
      ? el(
          "div",
          { class: "account-actions" },
          el("button", { type: "button", class: "edit", "aria-label": `Edit ${account.name}`, text: "Edit", onclick: () => editRow(row, account) }),
          el("button", { type: "button", class: "danger delete", "aria-label": `Delete ${account.name}`, text: "Delete", onclick: (e) => deleteAccount(account, e.currentTarget) }),
        )
      : null,
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
      const updated = await api.updateAccount(id, changes);
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
    await api.deleteAccount(account.id);
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
    const account = await api.addAccount({
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
// The current plan: a user's from Kinde's entitlements, an organization's from GET /usage (read
// first: it says which of the two the API bills). The picker offers every other plan.
async function loadPlan(usageRead) {
  await usageRead;
  if (state.org) {
    if (!state.org.none) renderPlan(state.org.plan);
    return;
  }
  let plan = null;
  try {
    plan = await kinde.currentPlan();
  } catch {
    plan = null; // the Account API did not answer: offer every plan, say so
  }
  renderPlan(plan);
}

function renderPlan(plan) {
  if (!state.session) return;
  state.session.plan = plan;
  renderShell();
  const others = config.plans.filter((code) => code !== plan);
  const select = $("plan-select");
  const chosen = select.value;
  select.replaceChildren(...others.map((code) => el("option", { value: code, text: code })));
  if (others.includes(chosen)) select.value = chosen;
  const org = state.org;
  $("plan-current").textContent = org
    ? plan
      ? `${org.name} is on the ${plan} plan.`
      : `Kinde did not say which plan ${org.name} is on just now; every plan is listed.`
    : plan
      ? `You are on the ${plan} plan.`
      : "Kinde did not say which plan you are on just now; every plan is listed.";
  const none = others.length === 0;
  select.disabled = none;
  $("plan-button").disabled = none;
  if (none) $("plan-check").replaceChildren(el("p", { text: "There is no other plan to move to." }));
}

async function checkPlan() {
  if (!state.session || (state.org && state.org.none)) return;
  const plan = $("plan-select").value;
  const box = $("plan-check");
  if (!plan) return;
  try {
    const result = await api.planCheck(plan);
    if (result.allowed) {
      box.replaceChildren(el("p", { class: "ok", text: `You can move to ${plan} now.` }));
    } else {
      box.replaceChildren(el("p", { class: "warn", text: result.hint || result.message || `You cannot move to ${plan} now.` }));
    }
  } catch (error) {
    box.replaceChildren();
    if (error instanceof ApiError && error.code !== "UNAUTHORIZED" && error.code !== "SIGNED_OUT") {
      box.append(el("p", { class: "error", text: sentence(error) }));
    } else {
      handle(error);
    }
  }
}

// Where Kinde's portal sends the user back: this page, marked so it can say so.
function portalReturnUrl() {
  const back = new URL(location.href);
  back.hash = "";
  back.searchParams.set(FROM_PORTAL, "kinde-portal");
  return back.toString();
}

// Our plan check first (it says what would block the change), then Kinde's portal, where the
// change is made (Kinde runs the workflow, which may deny it). Back here, the page reloads.
async function changePlan(event) {
  event.preventDefault();
  const result = $("plan-result");
  result.replaceChildren();
  notice("");
  await checkPlan();
  if (!state.session) return;
  const button = $("plan-button");
  button.disabled = true;
  button.textContent = "Opening Kinde…";
  try {
    if (await kinde.openPlanPortal(portalReturnUrl(), { organization: Boolean(state.org) })) return; // leaving for Kinde
    showSignIn(sentence({ code: "SIGNED_OUT" }));
  } catch (error) {
    result.replaceChildren(
      el("p", { class: "error", text: "Kinde’s plan page could not be opened, so your plan did not change. Try again in a moment." }),
      el("p", { class: "muted", text: `Kinde said: ${error && error.message ? error.message : String(error)}` }),
    );
  }
  button.disabled = false;
  button.textContent = "Change plan";
}

// -- sign-in ------------------------------------------------------------------------------------
function signInFailed(error) {
  const detail = [error && error.error, error && error.errorDescription].filter(Boolean).join(": ");
  $("signin-error").textContent = `Kinde did not complete the sign-in. Please try again.${detail ? ` (${detail})` : ""}`;
}

function signedIn(user, appState) {
  // back from Kinde's sign-in: return to the address the user signed in from (e.g. ?pageSize=)
  const from = appState && appState.kindeOriginUrl;
  if (typeof from === "string" && from.startsWith(`${location.origin}/`)) history.replaceState(null, "", from);
  notice(`Signed in as ${user.id}.`);
}

// Whose plan it is now, as "Back from Kinde." says it.
function backOn() {
  const plan = state.session && state.session.plan;
  if (!plan) return "";
  return state.org && !state.org.none ? `${state.org.name} is on the ${plan} plan.` : `You are on the ${plan} plan.`;
}

function backFromPortal() {
  const params = new URLSearchParams(location.search);
  if (params.get(FROM_PORTAL) !== "kinde-portal") return false;
  params.delete(FROM_PORTAL);
  const query = params.toString();
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}`);
  return true;
}

// -- online / offline ---------------------------------------------------------------------------
function updateOnline() {
  show($("offline"), !navigator.onLine);
}

async function init() {
  $("sign-in").addEventListener("click", () => kinde && kinde.signIn());
  $("sign-out").addEventListener("click", () => {
    state.session = null;
    kinde.signOut(); // Kinde ends its session, then sends the browser back here
  });
  $("add-form").addEventListener("submit", addAccount);
  $("plan-form").addEventListener("submit", changePlan);
  $("org-switch").addEventListener("submit", switchOrganization);
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
  const returned = backFromPortal();
  try {
    kinde = await connectKinde({ onSignedIn: signedIn, onError: signInFailed });
  } catch (error) {
    renderShell();
    $("sign-in").disabled = true;
    $("signin-error").textContent = `Sign-in with Kinde is not set up: ${error && error.message ? error.message : error}. Check kinde in config.js.`;
    document.body.dataset.ready = "true";
    return;
  }
  const user = (await kinde.accessToken()) ? kinde.user() : null;
  if (user) {
    state.session = { user: user.id, plan: null };
    await startDashboard();
    if (returned) notice(`Back from Kinde. ${backOn()}`.trim());
  } else {
    renderShell();
  }
  document.body.dataset.ready = "true";
}

init();
