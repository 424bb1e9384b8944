/**
 * Run the workflow as Kinde does, outside Kinde, against a real HTTP backend: the default export
 * with the real @kinde/infrastructure functions, over a stand-in for Kinde's runtime `kinde` global
 * (env, fetch and plan bindings; its fetch is Node's and, like Kinde's, gives the workflow the body
 * only, never the status). The backend's tests use it to show the workflow and the hold route agree
 * on the wire, and that the workflow decides every case of the shared table over HTTP.
 *
 *   One change (env from the environment):
 *     USAGE_API_URL=http://127.0.0.1:3000/api/users/accounts/count USAGE_API_KEY=... \
 *       node --import tsx scripts/runOverHttp.ts <userId> <currentPlan> <requestedPlan> [<orgCode>]
 *   Many changes, each with its own env, as a JSON array on stdin:
 *     node --import tsx scripts/runOverHttp.ts --stdin <<< '[{"userId","currentPlan","requestedPlan","env":{}}]'
 *   (each change may name "orgCode", the event's organization: default org_123, null = none; with
 *   BILLING_CUSTOMER=organization in env, or in the environment for one change, it is the id sent).
 *
 * Prints one JSON line per change: {"allowed", "denied": {message, reasons} | null, "error": text | null}
 * (allowed: the workflow neither denied nor threw; Kinde stops the change on a throw).
 */
import Workflow from "../kindeSrc/environment/workflows/denyPlanChange/denyPlanChangeWorkflow.ts";

interface Change {
  userId: string | null;
  currentPlan: string | null;
  requestedPlan: string | null;
  orgCode?: string | null;
  env: Record<string, string>;
}

interface Decision {
  allowed: boolean;
  denied: { message: string; reasons?: string[] } | null;
  error: string | null;
}

interface FetchOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams;
}

/** Kinde's user:plan_selection event (docs/KINDE.md), leaving out what is null. */
function planSelectionEvent({ userId, currentPlan, requestedPlan, orgCode = "org_123" }: Change) {
  const billing: { currentPlanCode?: string; requestedPlanCode?: string } = {};
  if (currentPlan !== null) billing.currentPlanCode = currentPlan;
  if (requestedPlan !== null) billing.requestedPlanCode = requestedPlan;
  return {
    request: { userAgent: "Mozilla/5.0 (runOverHttp)", ip: "127.0.0.1" },
    context: {
      domains: { kindeDomain: "https://example.kinde.com" },
      billing,
      user: userId === null ? {} : { id: userId },
      organization: orgCode === null ? {} : { code: orgCode },
      workflow: { trigger: "user:plan_selection" },
    },
  };
}

async function run(change: Change): Promise<Decision> {
  let denied: Decision["denied"] = null;
  const globals = globalThis as { kinde?: unknown };
  globals.kinde = {
    env: {
      get: (name: string) =>
        name in change.env ? { value: change.env[name], isSecret: name === "USAGE_API_KEY" } : undefined,
    },
    fetch: async (url: string, options: FetchOptions) => {
      const response = await fetch(url, { method: options.method, headers: options.headers, body: options.body });
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { json, text };
    },
    plan: {
      denySelection: (message: string, reasons?: string[]) => {
        denied = { message, reasons };
      },
    },
  };
  try {
    await Workflow(planSelectionEvent(change) as unknown as Parameters<typeof Workflow>[0]);
    return { allowed: denied === null, denied, error: null };
  } catch (error) {
    return { allowed: false, denied, error: error instanceof Error ? error.message : String(error) };
  } finally {
    delete globals.kinde;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const args = process.argv.slice(2);
let changes: Change[];
if (args[0] === "--stdin") {
  changes = JSON.parse(await readStdin()) as Change[];
} else {
  const env: Record<string, string> = {};
  for (const name of ["USAGE_API_URL", "USAGE_API_KEY", "PLAN_LIMITS", "BILLING_CUSTOMER"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  const [userId, currentPlan, requestedPlan, orgCode] = args;
  changes = [
    {
      userId: userId ?? null,
      currentPlan: currentPlan ?? null,
      requestedPlan: requestedPlan ?? null,
      ...(orgCode !== undefined ? { orgCode } : {}),
      env,
    },
  ];
}
for (const change of changes) {
  console.log(JSON.stringify(await run(change)));
}
