/**
 * Deny a plan downgrade while the customer's tracked accounts exceed the new plan's limit.
 *
 * Trigger: user:plan_selection. Same decisions, in the same order, as Plan Guard's Python rule
 * (layers/common/planguard/plan_rule.py); both run the shared case table in
 * tests/fixtures/plan_cases.json. Differences from the Kinde tutorial's workflow:
 *  - with USAGE_API_KEY set, every plan change that is not a clear upgrade places the downgrade
 *    hold (POST <USAGE_API_URL>/<userId>/hold?limit=N&plan=CODE, `Authorization: Bearer <key>`): a
 *    conditional write that binds the user's adds to the new limit until Kinde has applied the
 *    change (and only ever lowers an active hold), so no add slips in between this check and the
 *    smaller plan. Kinde runs this before payment and may apply the change late or never, so a
 *    selection never widens a limit. For a downgrade the hold is the read (deny when it is not
 *    held); for a lateral move or an unknown current plan it is best-effort protection that never
 *    changes the decision; a clear upgrade calls nothing;
 *  - without USAGE_API_KEY (backend in USAGE_AUTH=none) a downgrade reads the count with the
 *    tutorial's GET <USAGE_API_URL>/<userId>, and no hold is placed;
 *  - an answer it cannot read is an error (the tutorial compared `undefined > limit`, which is
 *    false, so an error body silently allowed the downgrade);
 *  - plan limits come from the PLAN_LIMITS env var (defaults: the tutorial's free = 3, pro = 5);
 *  - one workflow serves both kinds of Kinde billing customer, chosen by BILLING_CUSTOMER (unset =
 *    user): "user" counts the user's accounts (<USAGE_API_URL>/<context.user.id>), "organization"
 *    the organization's (USAGE_API_URL is then the organizations' count URL, and the workflow
 *    appends <context.organization.code>; a missing code throws). Either way the answer must name
 *    the id that was sent under the mode's field (kindeId or orgCode), else the workflow throws: a
 *    workflow whose mode and URL disagree fails closed instead of reading a count of 0.
 *
 * When in doubt about a downgrade the workflow throws: with failurePolicy "stop" the plan change
 * does not go ahead.
 */
import {
  denyPlanSelection,
  fetch,
  getEnvironmentVariable,
  WorkflowTrigger,
  type KindeFetchOptions,
  type onPlanSelection,
  type WorkflowSettings,
} from "@kinde/infrastructure";

// @kinde/infrastructure 0.9.0 types `bindings` without "kinde.plan", yet its denyPlanSelection
// throws at run time unless that binding is enabled: widen the type instead of dropping it.
type PlanSelectionWorkflowSettings = WorkflowSettings & {
  bindings: NonNullable<WorkflowSettings["bindings"]> & { "kinde.plan": Record<string, never> };
};

export const workflowSettings: PlanSelectionWorkflowSettings = {
  id: "onUserPlanSelection",
  name: "Deny Plan Change",
  trigger: WorkflowTrigger.PlanSelection,
  failurePolicy: { action: "stop" },
  bindings: {
    "kinde.plan": {},
    "kinde.fetch": {},
    "kinde.env": {},
    url: {},
  },
};

/** The billing feature whose limit the rule compares. */
export const FEATURE_KEY = "tracked_accounts";

/** `{plan code: {feature: limit}}`; `null` means unlimited. Same JSON as the backend's PLAN_LIMITS. */
export type PlanLimits = Record<string, Record<string, number | null>>;

/** The tutorial's plans; used when PLAN_LIMITS is unset. Mirrors planguard.settings.DEFAULT_PLAN_LIMITS. */
export const DEFAULT_PLAN_LIMITS: PlanLimits = {
  free: { [FEATURE_KEY]: 3 },
  pro: { [FEATURE_KEY]: 5 },
};

export const DENY_MESSAGE = "You need to reduce your usage before moving to this plan:";

/** The tutorial's two reasons, word for word. */
export function denyReasons(used: number, limit: number): string[] {
  return [
    `Your current usage is ${used}, but the new plan only allows up to ${limit}.`,
    `Please reduce your usage to ${limit} or fewer to continue.`,
  ];
}

/** The Kinde functions the rule uses, injectable so tests can stub them. */
export interface WorkflowDeps {
  fetch: (url: string, options: KindeFetchOptions) => Promise<{ data?: unknown } | undefined>;
  denyPlanSelection: (message: string, reasons?: string[]) => void;
  // Kinde may answer an unset variable with no object at all, so the result may be missing.
  getEnvironmentVariable: (name: string) => { value?: string | null } | null | undefined;
}

/** Only the fields the rule reads, all optional: a malformed event must fail loudly, not crash oddly. */
export interface PlanSelectionEvent {
  context?: {
    billing?: { currentPlanCode?: string | null; requestedPlanCode?: string | null } | null;
    user?: { id?: string | null } | null;
    organization?: { code?: string | null } | null;
  } | null;
}

/** Who Kinde bills in this environment, and so whose accounts are counted (BILLING_CUSTOMER). */
export type BillingCustomer = "user" | "organization";

/** How each kind of customer is named: in the event, in the usage API's answer, in messages. */
const CUSTOMERS = {
  user: { idField: "kindeId", missing: "Missing user id in event context.", noun: "user" },
  organization: {
    idField: "orgCode",
    missing: "Missing organization code in event context.",
    noun: "organization",
  },
} as const;

/** BILLING_CUSTOMER: unset or blank = user; anything but the two modes throws (fail closed). */
export function billingCustomer(raw: string | null | undefined): BillingCustomer {
  const value = raw?.trim() ?? "";
  if (value === "" || value === "user") return "user";
  if (value === "organization") return "organization";
  throw new Error(`Invalid BILLING_CUSTOMER: expected "user" or "organization", got ${JSON.stringify(raw)}.`);
}

/** The customer whose accounts are counted: the mode, the id sent and the field it comes back in. */
interface Customer {
  mode: BillingCustomer;
  id: string;
  idField: (typeof CUSTOMERS)[BillingCustomer]["idField"];
  cannotCheck: string;
}

/** What the rule decided; the same shape as the backend's plan-check result. */
export interface PlanSelectionOutcome {
  allowed: boolean;
  message: string | null;
  reasons: string[];
  usage: { [FEATURE_KEY]: { used: number; limit: number; excess: number } } | null;
}

const allow = (usage: PlanSelectionOutcome["usage"] = null): PlanSelectionOutcome => ({
  allowed: true,
  message: null,
  reasons: [],
  usage,
});

// Own keys only: a plan code such as "constructor" or "__proto__" must not look like a known plan.
const hasOwn = (obj: object, key: string): boolean => Object.prototype.hasOwnProperty.call(obj, key);

/**
 * What a plan code is: the backend's rule (layers/common/planguard/ids.py PLAN_CODE_PATTERN), which
 * its hold route also applies to `plan`. A code outside it would be refused by the hold, so every
 * downgrade to that plan would fail closed: PLAN_LIMITS refuses it instead.
 */
export const PLAN_CODE_PATTERN = /^[A-Za-z0-9_.:\-]{1,128}$/;
export const PLAN_CODE_RULE = "1-128 letters, digits, '_', '.', ':' or '-'";

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Validate PLAN_LIMITS like the backend does: a non-empty object of plans (codes matching
 * PLAN_CODE_PATTERN), each with the tracked_accounts feature, every limit a whole number >= 0 or
 * null (unlimited).
 * Unset or blank means the defaults. Returns plan code -> tracked_accounts limit.
 */
export function parsePlanLimits(raw: string | null | undefined): Map<string, number | null> {
  let data: unknown = DEFAULT_PLAN_LIMITS;
  if (raw != null && raw.trim() !== "") {
    try {
      data = JSON.parse(raw);
    } catch (error) {
      throw new Error(`Invalid PLAN_LIMITS: not valid JSON (${errorText(error)}).`);
    }
  }
  if (!isPlainObject(data) || Object.keys(data).length === 0) {
    throw new Error('Invalid PLAN_LIMITS: expected a non-empty object like {"free":{"tracked_accounts":3}}.');
  }
  const limits = new Map<string, number | null>();
  for (const [plan, features] of Object.entries(data)) {
    if (!PLAN_CODE_PATTERN.test(plan)) {
      throw new Error(
        `Invalid PLAN_LIMITS: plan codes must be non-empty strings of ${PLAN_CODE_RULE}, got ${JSON.stringify(plan)}.`,
      );
    }
    if (!isPlainObject(features) || !hasOwn(features, FEATURE_KEY)) {
      throw new Error(`Invalid PLAN_LIMITS: "${plan}" must be an object with a "${FEATURE_KEY}" key.`);
    }
    for (const [feature, limit] of Object.entries(features)) {
      if (limit !== null && !(typeof limit === "number" && Number.isInteger(limit) && limit >= 0)) {
        throw new Error(
          `Invalid PLAN_LIMITS: "${plan}"."${feature}" must be a whole number >= 0 or null (unlimited), ` +
            `got ${JSON.stringify(limit)}.`,
        );
      }
    }
    limits.set(plan, features[FEATURE_KEY] as number | null);
  }
  return limits;
}

/** `null` is unlimited: larger than any number, so moving to it is never a downgrade. */
function isSmaller(requested: number | null, current: number | null): requested is number {
  if (requested === null) return false;
  return current === null || requested < current;
}

/** A clear upgrade: the requested limit above the current one (nothing is above unlimited). */
function isLarger(requested: number | null, current: number | null): boolean {
  if (current === null) return false;
  return requested === null || requested > current;
}

function envValue(deps: WorkflowDeps, name: string): string | undefined {
  const value = deps.getEnvironmentVariable(name)?.value?.trim();
  return value ? value : undefined;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A short, log-safe rendering of the body the usage endpoint sent back. */
function describeBody(body: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(body) ?? String(body);
  } catch {
    text = String(body);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** The usage API for this customer: `<USAGE_API_URL>/<id>` and the headers to send. */
function usageApi(deps: WorkflowDeps, customer: Customer, apiKey: string | undefined) {
  const apiUrl = envValue(deps, "USAGE_API_URL");
  if (!apiUrl) {
    throw new Error("USAGE_API_URL is not set. Add a full URL in Kinde environment variables.");
  }
  const headers: Record<string, string> = { Accept: "application/json" };
  // Unset key: send no header, for a backend running with USAGE_AUTH=none.
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  return { url: `${apiUrl.replace(/\/+$/, "")}/${encodeURIComponent(customer.id)}`, headers };
}

/** The body Kinde's fetch resolved to; a network failure is a "cannot check" error. */
async function fetchBody(
  deps: WorkflowDeps,
  customer: Customer,
  url: string,
  options: KindeFetchOptions,
): Promise<unknown> {
  try {
    return (await deps.fetch(url, options))?.data;
  } catch (error) {
    throw new Error(`${customer.cannotCheck}: ${errorText(error)}`);
  }
}

/**
 * The answer must be about the id that was sent, under this mode's field: a user-mode workflow
 * pointed at the organizations' URL (or the reverse) would otherwise read a count of 0 and allow.
 */
function checkNamed(customer: Customer, body: Record<string, unknown>): void {
  const named = body[customer.idField];
  if (named !== customer.id) {
    throw new Error(
      `${customer.cannotCheck}: the usage API answered for ${describeBody(named)} in "${customer.idField}", ` +
        `not for ${JSON.stringify(customer.id)} (BILLING_CUSTOMER is "${customer.mode}": is USAGE_API_URL ` +
        `the ${customer.mode === "organization" ? "organizations'" : "users'"} count URL?)`,
    );
  }
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

/** The tutorial's read (no key): how many tracked accounts the customer has. Any doubt is an error. */
async function readUsage(deps: WorkflowDeps, customer: Customer): Promise<number> {
  const { url, headers } = usageApi(deps, customer, undefined);
  const body = await fetchBody(deps, customer, url, { method: "GET", responseFormat: "json", headers });
  // Kinde's fetch gives the body only, never the status: a 401/5xx body lands here too.
  const count = isPlainObject(body) ? body.count : undefined;
  if (!isPlainObject(body) || !isCount(count)) {
    throw new Error(
      `${customer.cannotCheck}: expected {"count": <number>} from the usage API, got ${describeBody(body)}`,
    );
  }
  checkNamed(customer, body);
  return count;
}

/**
 * Place the hold: adds are bound by `limit` (null: unlimited, nothing to hold) while
 * count <= limit, never raising an active hold; `held` says whether the user is now held at or
 * below `limit`. Any doubt is an error.
 */
async function placeHold(
  deps: WorkflowDeps,
  customer: Customer,
  apiKey: string,
  limit: number | null,
  plan: string,
): Promise<{ count: number; held: boolean }> {
  const { url, headers } = usageApi(deps, customer, apiKey);
  // Query parameters carry the fields (the backend takes the same fields as a form body too).
  const query = new URLSearchParams({ limit: limit === null ? "" : String(limit), plan });
  const options: KindeFetchOptions = { method: "POST", responseFormat: "json", headers };
  const body = await fetchBody(deps, customer, `${url}/hold?${query}`, options);
  const { count, held } = isPlainObject(body) ? body : {};
  if (!isPlainObject(body) || !isCount(count) || typeof held !== "boolean") {
    throw new Error(
      `${customer.cannotCheck}: expected {"count": <number>, "held": <boolean>} from the hold API, ` +
        `got ${describeBody(body)}`,
    );
  }
  checkNamed(customer, body);
  return { count, held };
}

/** Whose accounts: the mode from BILLING_CUSTOMER and the id from the event (missing throws). */
function customerOf(event: PlanSelectionEvent, deps: WorkflowDeps): Customer {
  const mode = billingCustomer(deps.getEnvironmentVariable("BILLING_CUSTOMER")?.value);
  const id = mode === "organization" ? event.context?.organization?.code : event.context?.user?.id;
  const { idField, missing, noun } = CUSTOMERS[mode];
  if (!id) throw new Error(missing);
  return { mode, id, idField, cannotCheck: `Cannot check the ${noun} limits, exiting the workflow` };
}

/**
 * The downgrade rule, in its order. Throws when a downgrade cannot be judged; calls
 * deps.denyPlanSelection (which does not throw) when usage is over the requested limit.
 */
export async function checkPlanSelection(
  event: PlanSelectionEvent,
  deps: WorkflowDeps,
): Promise<PlanSelectionOutcome> {
  const customer = customerOf(event, deps);
  const currentPlanCode = event.context?.billing?.currentPlanCode;
  const requestedPlanCode = event.context?.billing?.requestedPlanCode;

  if (!requestedPlanCode) throw new Error("Missing requested plan code.");

  const limits = parsePlanLimits(deps.getEnvironmentVariable("PLAN_LIMITS")?.value);
  if (!limits.has(requestedPlanCode)) {
    throw new Error(`Unknown requested plan: ${requestedPlanCode}`);
  }
  const requestedLimit = limits.get(requestedPlanCode) ?? null;
  const apiKey = envValue(deps, "USAGE_API_KEY");

  // A current plan outside our table (legacy, or none yet) is not ours to judge.
  const currentKnown = !!currentPlanCode && limits.has(currentPlanCode);
  const currentLimit = currentKnown ? (limits.get(currentPlanCode) ?? null) : null;
  // A clear upgrade (both limits known) can only widen: nothing to protect, and nothing is lifted,
  // since Kinde may never apply it (a payment that fails).
  if (currentKnown && isLarger(requestedLimit, currentLimit)) return allow();
  // A lateral move or an unknown current plan: with a key, hold at the requested limit in case the
  // change lowers it, best-effort: its answer never changes the decision and a failure never blocks.
  if (!currentKnown || !isSmaller(requestedLimit, currentLimit)) {
    if (apiKey) {
      try {
        await placeHold(deps, customer, apiKey, requestedLimit, requestedPlanCode);
      } catch (error) {
        console.log(`Plan Guard: could not place the hold, allowing the change anyway: ${errorText(error)}`);
      }
    }
    return allow();
  }
  // With a key the hold is the read: one conditional write, recorded only while count <= limit.
  let used: number;
  let over: boolean;
  if (apiKey) {
    const hold = await placeHold(deps, customer, apiKey, requestedLimit, requestedPlanCode);
    used = hold.count;
    over = !hold.held;
  } else {
    used = await readUsage(deps, customer);
    over = used > requestedLimit;
  }
  const usage = {
    [FEATURE_KEY]: { used, limit: requestedLimit, excess: Math.max(0, used - requestedLimit) },
  };
  if (over) {
    const reasons = denyReasons(used, requestedLimit);
    deps.denyPlanSelection(DENY_MESSAGE, reasons);
    return { allowed: false, message: DENY_MESSAGE, reasons, usage };
  }
  return allow(usage);
}

/** The real Kinde functions (they need the bindings enabled in workflowSettings). */
const kindeDeps: WorkflowDeps = { fetch, denyPlanSelection, getEnvironmentVariable };

export default async function Workflow(event: onPlanSelection): Promise<void> {
  await checkPlanSelection(event, kindeDeps);
}
