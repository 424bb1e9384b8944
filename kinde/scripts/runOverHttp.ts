/**
 * Run the workflow once against a real Plan Guard over HTTP, outside Kinde: the backend's tests
 * use it to show the workflow and the hold route agree on the wire.
 *
 *   USAGE_API_URL=http://127.0.0.1:3000/api/users/accounts/count USAGE_API_KEY=... \
 *     node --import tsx scripts/runOverHttp.ts <userId> <currentPlan> <requestedPlan>
 *
 * Prints {"outcome": ..., "denied": ...} as one JSON line. Kinde's fetch is stood in for by
 * Node's: it gives the workflow the body only, never the status, as Kinde's does.
 */
import { checkPlanSelection, type WorkflowDeps } from "../kindeSrc/environment/workflows/denyPlanChange/denyPlanChangeWorkflow.ts";

const [userId, currentPlanCode, requestedPlanCode] = process.argv.slice(2);
let denied: { message: string; reasons?: string[] } | null = null;

const deps: WorkflowDeps = {
  fetch: async (url, options) => {
    const response = await fetch(url, {
      method: options.method,
      headers: options.headers as Record<string, string> | undefined,
    });
    return { data: await response.json() };
  },
  denyPlanSelection: (message, reasons) => {
    denied = { message, reasons };
  },
  getEnvironmentVariable: (name) => ({ value: process.env[name] ?? null }),
};

const outcome = await checkPlanSelection(
  { context: { user: { id: userId }, billing: { currentPlanCode, requestedPlanCode } } },
  deps,
);
console.log(JSON.stringify({ outcome, denied }));
