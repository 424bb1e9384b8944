/**
 * Runs the shared plan-change case table (../../tests/fixtures/plan_cases.json, also run against
 * the Python rule) through the workflow with stubbed Kinde functions, plus workflow-only checks.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";

import Workflow, {
  checkPlanSelection,
  DEFAULT_PLAN_LIMITS,
  workflowSettings,
  type PlanLimits,
  type WorkflowDeps,
} from "../kindeSrc/environment/workflows/denyPlanChange/denyPlanChangeWorkflow.ts";

interface PlanCase {
  name: string;
  userId: string | null;
  currentPlan: string | null;
  requestedPlan: string | null;
  planLimits?: PlanLimits;
  usage: { count: number } | { body: unknown } | { unreachable: true };
  expected:
    | { error: string }
    | {
        allowed: boolean;
        message: string | null;
        reasons: string[];
        usage: Record<string, { used: number; limit: number; excess: number }> | null;
      };
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

const USAGE_API_URL = "https://api.example.test/api/users/accounts/count/";
const USAGE_API_KEY = "test-key";

interface FetchCall {
  url: string;
  headers: Record<string, string>;
}

interface Harness {
  deps: WorkflowDeps;
  fetchCalls: FetchCall[];
  denyCalls: { message: string; reasons: string[] | undefined }[];
}

/** Stubbed Kinde functions: fetch answers with `respond`, env answers from `env` (absent = unset). */
function harness(env: Record<string, string>, respond: (url: string) => Promise<unknown>): Harness {
  const fetchCalls: FetchCall[] = [];
  const denyCalls: Harness["denyCalls"] = [];
  const deps: WorkflowDeps = {
    fetch: async (url, options) => {
      fetchCalls.push({ url, headers: { ...options.headers } });
      return { data: await respond(url) };
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
function planSelectionEvent(userId: string | null, currentPlan: string | null, requestedPlan: string | null) {
  const billing: { currentPlanCode?: string; requestedPlanCode?: string } = {};
  if (currentPlan !== null) billing.currentPlanCode = currentPlan;
  if (requestedPlan !== null) billing.requestedPlanCode = requestedPlan;
  return {
    request: { userAgent: "Mozilla/5.0 (test)", ip: "203.0.113.7" },
    context: {
      domains: { kindeDomain: "https://example.kinde.com" },
      billing,
      user: userId === null ? {} : { id: userId },
      organization: { code: "org_123" },
      workflow: { trigger: "user:plan_selection" },
    },
  };
}

function usageResponder(usage: PlanCase["usage"], userId: string | null): () => Promise<unknown> {
  if ("unreachable" in usage) return () => Promise.reject(new Error("connect ECONNREFUSED"));
  if ("body" in usage) return () => Promise.resolve(usage.body);
  return () => Promise.resolve({ kindeId: userId, count: usage.count });
}

const downgradeEvent = planSelectionEvent("kp_a", "pro", "free");
const defaultEnv = { USAGE_API_URL, USAGE_API_KEY };

describe("shared plan cases (tests/fixtures/plan_cases.json)", { skip: skipShared }, () => {
  it("the table has cases", () => {
    assert.ok(table && table.cases.length > 0, "the case table is empty");
  });

  for (const testCase of table?.cases ?? []) {
    it(testCase.name, async () => {
      const env: Record<string, string> = { ...defaultEnv };
      if (testCase.planLimits) env.PLAN_LIMITS = JSON.stringify(testCase.planLimits);
      const { deps, fetchCalls, denyCalls } = harness(env, usageResponder(testCase.usage, testCase.userId));
      const event = planSelectionEvent(testCase.userId, testCase.currentPlan, testCase.requestedPlan);
      const { expected } = testCase;

      let usageRead: boolean;
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
        // Of the errors, only the usage-reading ones come after the fetch.
        usageRead = expected.error.startsWith("Cannot check the user limits");
      } else {
        const outcome = await checkPlanSelection(event, deps);
        assert.deepEqual(outcome, expected);
        if (expected.allowed) {
          assert.deepEqual(denyCalls, []);
        } else {
          assert.deepEqual(denyCalls, [{ message: expected.message, reasons: expected.reasons }]);
        }
        usageRead = expected.usage !== null;
      }

      assert.equal(fetchCalls.length, usageRead ? 1 : 0, usageRead ? "usage must be read" : "usage must not be read");
      for (const call of fetchCalls) {
        assert.ok(testCase.userId !== null);
        assert.ok(call.url.endsWith(`/${testCase.userId}`), call.url);
        assert.equal(call.url, `https://api.example.test/api/users/accounts/count/${testCase.userId}`);
        assert.equal(call.headers.Authorization, `Bearer ${USAGE_API_KEY}`);
      }
    });
  }
});

describe("workflow configuration", () => {
  it("default plan limits equal the fixture's defaultPlanLimits", { skip: skipShared }, () => {
    assert.deepEqual(DEFAULT_PLAN_LIMITS, table?.defaultPlanLimits);
  });

  it("PLAN_LIMITS unset or blank uses the defaults (pro -> free over 3 is denied)", async () => {
    for (const env of [defaultEnv, { ...defaultEnv, PLAN_LIMITS: "  " }]) {
      const { deps, denyCalls } = harness(env, () => Promise.resolve({ kindeId: "kp_a", count: 4 }));
      const outcome = await checkPlanSelection(downgradeEvent, deps);
      assert.equal(outcome.allowed, false);
      assert.equal(denyCalls.length, 1);
    }
  });

  const invalidPlanLimits: [string, string][] = [
    ["not JSON", "{free: 3}"],
    ["an array", "[]"],
    ["an empty object", "{}"],
    ["a plan without the feature", '{"free":{},"pro":{"tracked_accounts":5}}'],
    ["a plan that is not an object", '{"free":3,"pro":{"tracked_accounts":5}}'],
    ["a negative limit", '{"free":{"tracked_accounts":-1},"pro":{"tracked_accounts":5}}'],
    ["a fractional limit", '{"free":{"tracked_accounts":2.5},"pro":{"tracked_accounts":5}}'],
    ["a string limit", '{"free":{"tracked_accounts":"3"},"pro":{"tracked_accounts":5}}'],
    ["a blank plan code", '{" ":{"tracked_accounts":3},"pro":{"tracked_accounts":5}}'],
  ];
  for (const [label, raw] of invalidPlanLimits) {
    it(`an invalid PLAN_LIMITS (${label}) throws before reading usage`, async () => {
      const { deps, fetchCalls, denyCalls } = harness({ ...defaultEnv, PLAN_LIMITS: raw }, () =>
        Promise.resolve({ kindeId: "kp_a", count: 0 }),
      );
      await assert.rejects(checkPlanSelection(downgradeEvent, deps), /Invalid PLAN_LIMITS/);
      assert.equal(fetchCalls.length, 0);
      assert.equal(denyCalls.length, 0);
    });
  }

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
    const { deps, fetchCalls } = harness(
      { USAGE_API_URL: "https://api.example.test/count", USAGE_API_KEY },
      () => Promise.resolve({ count: 0 }),
    );
    await checkPlanSelection(planSelectionEvent("kp:a/b", "pro", "free"), deps);
    assert.equal(fetchCalls[0]!.url, "https://api.example.test/count/kp%3Aa%2Fb");
  });

  for (const [label, data] of [
    ["no body", undefined],
    ["null", null],
    ["a text body", "Internal Server Error"],
    ["a negative count", { count: -1 }],
    ["a fractional count", { count: 1.5 }],
  ] as const) {
    it(`a usage answer with ${label} throws, never allows`, async () => {
      const { deps, denyCalls } = harness(defaultEnv, () => Promise.resolve(data));
      await assert.rejects(checkPlanSelection(downgradeEvent, deps), /^Error: Cannot check the user limits/);
      assert.equal(denyCalls.length, 0);
    });
  }
});

describe("default export against the real @kinde/infrastructure functions", () => {
  it("declares the plan-selection trigger, stop on failure and the bindings it uses", () => {
    assert.equal(workflowSettings.trigger, "user:plan_selection");
    assert.deepEqual(workflowSettings.failurePolicy, { action: "stop" });
    assert.deepEqual(Object.keys(workflowSettings.bindings).sort(), ["kinde.env", "kinde.fetch", "kinde.plan", "url"]);
  });

  it("Workflow(event) reads env, fetches and denies through Kinde's bindings", async () => {
    // @kinde/infrastructure calls the runtime's global `kinde` object; stand one in.
    const fetched: { url: string; options: unknown }[] = [];
    const denied: unknown[][] = [];
    const env: Record<string, string> = { USAGE_API_URL, USAGE_API_KEY };
    const globals = globalThis as { kinde?: unknown };
    globals.kinde = {
      env: { get: (name: string) => (name in env ? { value: env[name], isSecret: false } : undefined) },
      fetch: async (url: string, options: unknown) => {
        fetched.push({ url, options });
        return { json: { kindeId: "kp_0f2c4a1b9e8d4c3b", count: 5 } };
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
    assert.equal(fetched[0]!.url, `${USAGE_API_URL}kp_0f2c4a1b9e8d4c3b`);
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
