/**
 * Runs the shared plan-change case table (../../tests/fixtures/plan_cases.json, also run against
 * the Python rule) through the workflow with stubbed Kinde functions, the shared table of bad
 * PLAN_LIMITS values (../../tests/fixtures/plan_limits_invalid.json, also run against the Python
 * validator), plus workflow-only checks.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";

import type { KindeFetchOptions } from "@kinde/infrastructure";

import Workflow, {
  billingCustomer,
  checkPlanSelection,
  DEFAULT_PLAN_LIMITS,
  DENY_MESSAGE,
  denyReasons,
  parsePlanLimits,
  PLAN_CODE_PATTERN,
  workflowSettings,
  type PlanLimits,
  type WorkflowDeps,
} from "../kindeSrc/environment/workflows/denyPlanChange/denyPlanChangeWorkflow.ts";

type Answer = { body: unknown } | { unreachable: true };

interface PlanCase {
  name: string;
  /** The mode: true = USAGE_API_KEY set (holds); false/absent = no key (the seed's GET). */
  usageApiKey?: boolean;
  /** Whose accounts: absent = user; "organization" sends orgCode (null = missing) instead. */
  billingCustomer?: "user" | "organization";
  orgCode?: string | null;
  userId: string | null;
  currentPlan: string | null;
  requestedPlan: string | null;
  planLimits?: PlanLimits;
  usage?: { count: number } | Answer;
  hold?: { count: number; held: boolean; limit?: number | null } | Answer;
  expected:
    | { error: string }
    | {
        allowed: boolean;
        message: string | null;
        reasons: string[];
        usage: Record<string, { used: number; limit: number; excess: number }> | null;
      };
  usageReads: number;
  holdCalls: { limit: number | null; plan: string }[];
}

interface PlanCaseTable {
  defaultPlanLimits: PlanLimits;
  cases: PlanCase[];
}

// Relative to this file, so the table stays the one the Python tests read. When kinde/ is pushed
// as its own repo the table is not there: its tests are then skipped (and say so), not failed.
const FIXTURE = new URL("../../tests/fixtures/plan_cases.json", import.meta.url);
const table: PlanCaseTable | undefined = existsSync(FIXTURE)
  ? (JSON.parse(readFileSync(FIXTURE, "utf8")) as PlanCaseTable)
  : undefined;
const skipShared = table ? false : `shared case table not found at ${FIXTURE.pathname}`;

interface PlanLimitsTable {
  invalid: { name: string; planLimits: string; message: string }[];
  planCodes: { message: string; valid: string[]; invalid: string[] };
}

const LIMITS_FIXTURE = new URL("../../tests/fixtures/plan_limits_invalid.json", import.meta.url);
const limitsTable: PlanLimitsTable | undefined = existsSync(LIMITS_FIXTURE)
  ? (JSON.parse(readFileSync(LIMITS_FIXTURE, "utf8")) as PlanLimitsTable)
  : undefined;
const skipLimits = limitsTable ? false : `shared PLAN_LIMITS table not found at ${LIMITS_FIXTURE.pathname}`;

const USAGE_API_URL = "https://api.example.test/api/users/accounts/count/";
const ORG_USAGE_API_URL = "https://api.example.test/api/organizations/accounts/count";
const USAGE_API_KEY = "test-key";

interface FetchCall {
  url: string;
  method: string;
  headers: Record<string, string>;
}

interface Harness {
  deps: WorkflowDeps;
  fetchCalls: FetchCall[];
  denyCalls: { message: string; reasons: string[] | undefined }[];
}

type Responder = (url: string, method: string) => Promise<unknown>;

/** Stubbed Kinde functions: fetch answers with `respond`, env answers from `env` (absent = unset). */
function harness(env: Record<string, string>, respond: Responder): Harness {
  const fetchCalls: FetchCall[] = [];
  const denyCalls: Harness["denyCalls"] = [];
  const deps: WorkflowDeps = {
    fetch: async (url, options) => {
      fetchCalls.push({ url, method: options.method, headers: { ...options.headers } });
      return { data: await respond(url, options.method) };
    },
    denyPlanSelection: (message, reasons) => {
      denyCalls.push({ message, reasons });
    },
    getEnvironmentVariable: (name) => {
      const value = env[name];
      return value === undefined ? undefined : { value, isSecret: name === "USAGE_API_KEY" };
    },
  };
  return { deps, fetchCalls, denyCalls };
}

/** Kinde's user:plan_selection event (docs/KINDE.md), leaving out what the case has as null. */
function planSelectionEvent(
  userId: string | null,
  currentPlan: string | null,
  requestedPlan: string | null,
  orgCode: string | null = "org_123",
) {
  const billing: { currentPlanCode?: string; requestedPlanCode?: string } = {};
  if (currentPlan !== null) billing.currentPlanCode = currentPlan;
  if (requestedPlan !== null) billing.requestedPlanCode = requestedPlan;
  return {
    request: { userAgent: "Mozilla/5.0 (test)", ip: "203.0.113.7" },
    context: {
      domains: { kindeDomain: "https://example.kinde.com" },
      billing,
      user: userId === null ? {} : { id: userId },
      organization: orgCode === null ? {} : { code: orgCode },
      workflow: { trigger: "user:plan_selection" },
    },
  };
}

const isOrganization = (testCase: PlanCase): boolean => testCase.billingCustomer === "organization";

/** The backend as the case describes it: GET <base>/<id> answers `usage`, POST <base>/<id>/hold `hold`. */
function backend(testCase: PlanCase): Responder {
  const { usage, hold } = testCase;
  // A bare answer names the id it was asked about, under the mode's field, as the backend does.
  const named = isOrganization(testCase) ? { orgCode: testCase.orgCode } : { kindeId: testCase.userId };
  return async (url, method) => {
    const given = method === "POST" ? hold : usage;
    if (given === undefined) throw new Error(`${method} ${url} must not be called in this case`);
    if ("unreachable" in given) throw new Error("connect ECONNREFUSED");
    if ("body" in given) return given.body;
    if (!("held" in given)) return { ...named, count: given.count };
    const requested = new URL(url).searchParams.get("limit");
    return {
      ...named,
      count: given.count,
      held: given.held,
      // An active, lower hold answers with its own limit; else the requested one.
      limit: "limit" in given && given.limit !== undefined ? given.limit : requested ? Number(requested) : null,
      holdUntil: given.held ? "2030-01-01T00:06:00Z" : null,
    };
  };
}

const downgradeEvent = planSelectionEvent("kp_a", "pro", "free");
const lateralEvent = planSelectionEvent("kp_a", "pro", "pro");
const defaultEnv = { USAGE_API_URL, USAGE_API_KEY };
const noKeyEnv = { USAGE_API_URL };
const holdAnswer = (count: number, held: boolean, limit: number | null = 3) => ({
  kindeId: "kp_a",
  count,
  held,
  limit,
  holdUntil: held ? "2030-01-01T00:06:00Z" : null,
});
const countBase = "https://api.example.test/api/users/accounts/count";
const orgCountBase = ORG_USAGE_API_URL;

describe("shared plan cases (tests/fixtures/plan_cases.json)", { skip: skipShared }, () => {
  it("the table has cases", () => {
    assert.ok(table && table.cases.length > 0, "the case table is empty");
  });

  for (const testCase of table?.cases ?? []) {
    it(testCase.name, async () => {
      const organization = isOrganization(testCase);
      const env: Record<string, string> = { USAGE_API_URL: organization ? ORG_USAGE_API_URL : USAGE_API_URL };
      if (organization) env.BILLING_CUSTOMER = "organization";
      if (testCase.usageApiKey) env.USAGE_API_KEY = USAGE_API_KEY;
      if (testCase.planLimits) env.PLAN_LIMITS = JSON.stringify(testCase.planLimits);
      const { deps, fetchCalls, denyCalls } = harness(env, backend(testCase));
      const event = planSelectionEvent(
        testCase.userId,
        testCase.currentPlan,
        testCase.requestedPlan,
        organization ? (testCase.orgCode ?? null) : "org_123",
      );
      const { expected } = testCase;

      if ("error" in expected) {
        await assert.rejects(checkPlanSelection(event, deps), (error: unknown) => {
          assert.ok(error instanceof Error);
          assert.ok(
            error.message.includes(expected.error),
            `expected an error containing ${JSON.stringify(expected.error)}, got ${JSON.stringify(error.message)}`,
          );
          return true;
        });
        assert.deepEqual(denyCalls, [], "an error must never deny as well");
      } else {
        const outcome = await checkPlanSelection(event, deps);
        assert.deepEqual(outcome, expected);
        if (expected.allowed) {
          assert.deepEqual(denyCalls, []);
        } else {
          assert.deepEqual(denyCalls, [{ message: expected.message, reasons: expected.reasons }]);
        }
      }

      const base = organization ? orgCountBase : countBase;
      const id = encodeURIComponent((organization ? testCase.orgCode : testCase.userId) ?? "");
      const reads = fetchCalls.filter((call) => call.method === "GET");
      const holds = fetchCalls.filter((call) => call.method === "POST");
      assert.equal(reads.length + holds.length, fetchCalls.length, "only GET and POST are used");
      assert.deepEqual(
        reads.map((call) => call.url),
        Array(testCase.usageReads).fill(`${base}/${id}`),
      );
      assert.deepEqual(
        holds.map((call) => call.url),
        testCase.holdCalls.map(
          (hold) => `${base}/${id}/hold?limit=${hold.limit ?? ""}&plan=${encodeURIComponent(hold.plan)}`,
        ),
      );
      for (const call of fetchCalls) {
        assert.equal(call.headers.Authorization, testCase.usageApiKey ? `Bearer ${USAGE_API_KEY}` : undefined);
      }
    });
  }
});

describe("workflow configuration", () => {
  it("default plan limits equal the fixture's defaultPlanLimits", { skip: skipShared }, () => {
    assert.deepEqual(DEFAULT_PLAN_LIMITS, table?.defaultPlanLimits);
  });

  it("PLAN_LIMITS unset or blank uses the defaults (pro -> free over 3 is denied)", async () => {
    for (const env of [noKeyEnv, { ...noKeyEnv, PLAN_LIMITS: "  " }]) {
      const { deps, denyCalls } = harness(env, () => Promise.resolve({ kindeId: "kp_a", count: 4 }));
      const outcome = await checkPlanSelection(downgradeEvent, deps);
      assert.equal(outcome.allowed, false);
      assert.equal(denyCalls.length, 1);
    }
  });

  // The shared table of bad PLAN_LIMITS values (also run against the backend's validator).
  const invalid = limitsTable?.invalid ?? [];
  const codes = limitsTable?.planCodes ?? { message: "", valid: [], invalid: [] };
  for (const entry of invalid) {
    it(`an invalid PLAN_LIMITS (${entry.name}) throws before reading usage`, { skip: skipLimits }, async () => {
      const { deps, fetchCalls, denyCalls } = harness({ ...defaultEnv, PLAN_LIMITS: entry.planLimits }, () =>
        Promise.resolve({ kindeId: "kp_a", count: 0 }),
      );
      await assert.rejects(checkPlanSelection(downgradeEvent, deps), (error: Error) => {
        assert.match(error.message, /^Invalid PLAN_LIMITS: /);
        assert.ok(error.message.includes(entry.message), `${error.message} lacks ${entry.message}`);
        return true;
      });
      assert.equal(fetchCalls.length, 0);
      assert.equal(denyCalls.length, 0);
    });
  }

  it("every valid plan code of the shared table is accepted", { skip: skipLimits }, () => {
    assert.ok(codes.valid.length > 0);
    for (const code of codes.valid) {
      const limits = parsePlanLimits(JSON.stringify({ [code]: { tracked_accounts: 3 } }));
      assert.deepEqual([...limits], [[code, 3]], code);
    }
  });

  it("every invalid plan code of the shared table is refused", { skip: skipLimits }, () => {
    assert.ok(codes.invalid.length > 0);
    for (const code of codes.invalid) {
      const raw = JSON.stringify({ [code]: { tracked_accounts: 3 }, pro: { tracked_accounts: 5 } });
      assert.throws(
        () => parsePlanLimits(raw),
        (error: Error) => error.message.includes(codes.message),
        JSON.stringify(code),
      );
    }
  });

  it('"pro plan" is not a plan code (the hold route would refuse it)', () => {
    assert.throws(
      () => parsePlanLimits('{"pro plan":{"tracked_accounts":5}}'),
      /Invalid PLAN_LIMITS: plan codes must be non-empty strings/,
    );
    assert.ok(!PLAN_CODE_PATTERN.test("pro plan"));
  });

  it("a plan code inherited from Object.prototype is not a known plan", async () => {
    const { deps } = harness(defaultEnv, () => Promise.resolve({ kindeId: "kp_a", count: 0 }));
    await assert.rejects(
      checkPlanSelection(planSelectionEvent("kp_a", "pro", "constructor"), deps),
      /Unknown requested plan: constructor/,
    );
  });
});

describe("usage API call", () => {
  for (const key of [undefined, "", "   "]) {
    it(`no USAGE_API_KEY (${JSON.stringify(key)}) sends no Authorization header`, async () => {
      const env: Record<string, string> = { USAGE_API_URL };
      if (key !== undefined) env.USAGE_API_KEY = key;
      const { deps, fetchCalls } = harness(env, () => Promise.resolve({ kindeId: "kp_a", count: 1 }));
      const outcome = await checkPlanSelection(downgradeEvent, deps);
      assert.equal(outcome.allowed, true);
      assert.equal(fetchCalls.length, 1);
      assert.ok(!("Authorization" in fetchCalls[0]!.headers), JSON.stringify(fetchCalls[0]!.headers));
    });
  }

  it("missing USAGE_API_URL on a downgrade throws", async () => {
    const { deps, fetchCalls, denyCalls } = harness({ USAGE_API_KEY }, () =>
      Promise.resolve({ kindeId: "kp_a", count: 9 }),
    );
    await assert.rejects(checkPlanSelection(downgradeEvent, deps), /USAGE_API_URL is not set/);
    assert.equal(fetchCalls.length, 0);
    assert.equal(denyCalls.length, 0);
  });

  it("missing USAGE_API_URL does not matter for an upgrade", async () => {
    const { deps } = harness({}, () => Promise.reject(new Error("must not be called")));
    const outcome = await checkPlanSelection(planSelectionEvent("kp_a", "free", "pro"), deps);
    assert.equal(outcome.allowed, true);
  });

  it("encodes the user id into the URL path and accepts a base URL without a trailing slash", async () => {
    const event = planSelectionEvent("kp:a/b", "pro", "free");
    const base = { USAGE_API_URL: "https://api.example.test/count" };
    const read = harness(base, () => Promise.resolve({ kindeId: "kp:a/b", count: 0 }));
    await checkPlanSelection(event, read.deps);
    assert.equal(read.fetchCalls[0]!.url, "https://api.example.test/count/kp%3Aa%2Fb");
    const hold = harness({ ...base, USAGE_API_KEY }, () => Promise.resolve({ ...holdAnswer(0, true), kindeId: "kp:a/b" }));
    await checkPlanSelection(event, hold.deps);
    assert.equal(hold.fetchCalls[0]!.url, "https://api.example.test/count/kp%3Aa%2Fb/hold?limit=3&plan=free");
  });

  const garbage = [
    ["no body", undefined],
    ["null", null],
    ["a text body", "Internal Server Error"],
    ["an array", [{ count: 1, held: true }]],
    ["a negative count", { count: -1, held: true }],
    ["a fractional count", { count: 1.5, held: true }],
    ["a count as text", { count: "1", held: true }],
  ] as const;
  for (const [mode, env] of [
    ["the seed's GET", noKeyEnv],
    ["the hold", defaultEnv],
  ] as const) {
    for (const [label, data] of garbage) {
      it(`a downgrade answer (${mode}) with ${label} throws, never allows`, async () => {
        const { deps, denyCalls, fetchCalls } = harness(env, () => Promise.resolve(data));
        await assert.rejects(checkPlanSelection(downgradeEvent, deps), /^Error: Cannot check the user limits/);
        assert.equal(denyCalls.length, 0);
        assert.equal(fetchCalls.length, 1);
      });
    }
  }
});

describe("BILLING_CUSTOMER", () => {
  it("unset or blank is user mode; the two modes are read as given", () => {
    for (const raw of [undefined, null, "", "  ", "user"]) assert.equal(billingCustomer(raw), "user");
    assert.equal(billingCustomer("organization"), "organization");
    assert.equal(billingCustomer(" organization "), "organization");
  });

  for (const raw of ["org", "Organization", "users", "none"]) {
    it(`${JSON.stringify(raw)} throws before any call (fail closed)`, async () => {
      const { deps, fetchCalls, denyCalls } = harness({ ...defaultEnv, BILLING_CUSTOMER: raw }, () =>
        Promise.resolve(holdAnswer(0, true)),
      );
      await assert.rejects(checkPlanSelection(downgradeEvent, deps), /Invalid BILLING_CUSTOMER/);
      assert.equal(fetchCalls.length, 0);
      assert.equal(denyCalls.length, 0);
    });
  }

  it("organization mode encodes the organization code into the URL and sends the hold for it", async () => {
    const env = { USAGE_API_URL: `${ORG_USAGE_API_URL}/`, USAGE_API_KEY, BILLING_CUSTOMER: "organization" };
    const event = planSelectionEvent("kp_a", "pro", "free", "org:a/b");
    const answer = { orgCode: "org:a/b", count: 2, held: true, limit: 3, holdUntil: "2030-01-01T00:06:00Z" };
    const { deps, fetchCalls } = harness(env, () => Promise.resolve(answer));
    assert.equal((await checkPlanSelection(event, deps)).allowed, true);
    assert.deepEqual(
      fetchCalls.map((call) => call.url),
      [`${ORG_USAGE_API_URL}/org%3Aa%2Fb/hold?limit=3&plan=free`],
    );
  });

  it("a user-mode workflow on the organizations' URL fails closed instead of reading 0", async () => {
    // The organizations' route answers {orgCode, count: 0} for an id that is not an organization.
    const env = { USAGE_API_URL: ORG_USAGE_API_URL, USAGE_API_KEY };
    const { deps, denyCalls } = harness(env, () =>
      Promise.resolve({ orgCode: "kp_a", count: 0, held: true, limit: 3, holdUntil: "2030-01-01T00:06:00Z" }),
    );
    await assert.rejects(checkPlanSelection(downgradeEvent, deps), /^Error: Cannot check the user limits.*kindeId/);
    assert.equal(denyCalls.length, 0);
  });
});

describe("the hold", () => {
  it("a downgrade is one POST to <USAGE_API_URL>/<id>/hold with the key, the limit and the plan", async () => {
    const calls: { url: string; options: KindeFetchOptions }[] = [];
    const { deps } = harness(defaultEnv, () => Promise.resolve(holdAnswer(2, true)));
    const stubbed = deps.fetch;
    deps.fetch = (url, options) => {
      calls.push({ url, options });
      return stubbed(url, options);
    };
    const outcome = await checkPlanSelection(downgradeEvent, deps);
    assert.equal(outcome.allowed, true);
    assert.deepEqual(calls, [
      {
        url: "https://api.example.test/api/users/accounts/count/kp_a/hold?limit=3&plan=free",
        options: {
          method: "POST",
          responseFormat: "json",
          headers: { Accept: "application/json", Authorization: `Bearer ${USAGE_API_KEY}` },
        },
      },
    ]);
  });

  it("held false denies with the count the hold saw, even when it is not over the limit", async () => {
    // The conditional write decides; its count only explains the denial.
    const { deps, denyCalls } = harness(defaultEnv, () => Promise.resolve(holdAnswer(4, false)));
    const outcome = await checkPlanSelection(downgradeEvent, deps);
    assert.equal(outcome.allowed, false);
    assert.deepEqual(denyCalls, [{ message: DENY_MESSAGE, reasons: denyReasons(4, 3) }]);
  });

  for (const [label, data] of [
    ["held missing", { count: 1 }],
    ["held as text", { count: 1, held: "true" }],
    ["count missing", { held: true }],
  ] as const) {
    it(`a hold answer with ${label} throws on a downgrade`, async () => {
      const { deps, denyCalls } = harness(defaultEnv, () => Promise.resolve(data));
      await assert.rejects(checkPlanSelection(downgradeEvent, deps), /^Error: Cannot check the user limits/);
      assert.equal(denyCalls.length, 0);
    });
  }

  for (const [label, env, respond] of [
    ["the fetch throwing", defaultEnv, () => Promise.reject(new Error("connect ECONNREFUSED"))],
    ["an error body", defaultEnv, () => Promise.resolve({ error: { code: "SERVICE_UNAVAILABLE" } })],
    ["no USAGE_API_URL", { USAGE_API_KEY }, () => Promise.reject(new Error("must not be called"))],
    ["a hold that was not held", defaultEnv, () => Promise.resolve(holdAnswer(9, false, 5))],
  ] as const) {
    it(`a lateral move is allowed whatever the best-effort hold does: ${label}`, async () => {
      const { deps, denyCalls } = harness(env, respond);
      assert.deepEqual(await checkPlanSelection(lateralEvent, deps), {
        allowed: true,
        message: null,
        reasons: [],
        usage: null,
      });
      assert.equal(denyCalls.length, 0);
    });
  }
});

describe("a clear upgrade", () => {
  for (const [current, requested] of [
    ["free", "pro"],
    ["pro", "max"],
  ] as const) {
    it(`${current} -> ${requested} calls nothing: a selection that is never paid must not lift a hold`, async () => {
      const env = { ...defaultEnv, PLAN_LIMITS: JSON.stringify({ ...DEFAULT_PLAN_LIMITS, max: { tracked_accounts: null } }) };
      const { deps, fetchCalls, denyCalls } = harness(env, () => Promise.reject(new Error("must not be called")));
      const outcome = await checkPlanSelection(planSelectionEvent("kp_a", current, requested), deps);
      assert.deepEqual(outcome, { allowed: true, message: null, reasons: [], usage: null });
      assert.deepEqual(fetchCalls, []);
      assert.deepEqual(denyCalls, []);
    });
  }
});

describe("default export against the real @kinde/infrastructure functions", () => {
  it("declares the plan-selection trigger, stop on failure and the bindings it uses", () => {
    assert.equal(workflowSettings.trigger, "user:plan_selection");
    assert.deepEqual(workflowSettings.failurePolicy, { action: "stop" });
    assert.deepEqual(Object.keys(workflowSettings.bindings).sort(), ["kinde.env", "kinde.fetch", "kinde.plan", "url"]);
  });

  it("Workflow(event) reads env, places the hold and denies through Kinde's bindings", async () => {
    // @kinde/infrastructure calls the runtime's global `kinde` object; stand one in.
    const fetched: { url: string; options: unknown }[] = [];
    const denied: unknown[][] = [];
    const env: Record<string, string> = { USAGE_API_URL, USAGE_API_KEY };
    const globals = globalThis as { kinde?: unknown };
    globals.kinde = {
      env: { get: (name: string) => (name in env ? { value: env[name], isSecret: false } : undefined) },
      fetch: async (url: string, options: unknown) => {
        fetched.push({ url, options });
        return { json: { kindeId: "kp_0f2c4a1b9e8d4c3b", count: 5, held: false, limit: 3, holdUntil: null } };
      },
      plan: { denySelection: (...args: unknown[]) => denied.push(args) },
    };
    try {
      const event = planSelectionEvent("kp_0f2c4a1b9e8d4c3b", "pro", "free");
      await Workflow(event as unknown as Parameters<typeof Workflow>[0]);
    } finally {
      delete globals.kinde;
    }
    assert.equal(fetched.length, 1);
    assert.equal(fetched[0]!.url, `${USAGE_API_URL}kp_0f2c4a1b9e8d4c3b/hold?limit=3&plan=free`);
    assert.equal((fetched[0]!.options as KindeFetchOptions).method, "POST");
    assert.deepEqual(denied, [
      [
        "You need to reduce your usage before moving to this plan:",
        [
          "Your current usage is 5, but the new plan only allows up to 3.",
          "Please reduce your usage to 3 or fewer to continue.",
        ],
      ],
    ]);
  });
});
