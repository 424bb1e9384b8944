// The API's public routes, each called with a Kinde access token, and every error code turned
// into a sentence a person can act on.
import { config } from "./config.js";

export class ApiError extends Error {
  constructor(status, code, message, body = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

function later(seconds) {
  return seconds ? `in ${seconds} second${seconds === "1" ? "" : "s"}` : "in a moment";
}

// Every error code of the API (and of the local gateway), as a human sentence.
export function sentence(error) {
  const wait = later(error.retryAfter);
  switch (error.code) {
    case "OFFLINE":
      return navigator.onLine
        ? "The API cannot be reached. Check your connection or that the server is running, then try again."
        : "You are offline. Reconnect, then try again.";
    case "BAD_REQUEST":
      return "The request was not understood. Reload the page and try again.";
    case "UNAUTHORIZED":
      return "Your sign-in is missing, invalid or expired. Please sign in again.";
    case "SIGNED_OUT":
      return "Your Kinde sign-in has ended. Please sign in again.";
    case "NO_ORGANIZATION":
      return "You are not signed in to one of your organizations, so there are no tracked accounts to show. Switch to an organization you belong to, or ask to be added to one.";
    case "FORBIDDEN":
      return "Your role in this organization lets you see its tracked accounts but not add, change or delete them.";
    case "LIMIT_REACHED":
      return error.message; // the seed's own words: "You’ve reached your tracked accounts limit (5). …"
    case "NO_ENTITLEMENT":
      return "Your plan does not include tracked accounts. Choose a plan that does to add accounts.";
    case "NOT_FOUND":
      return "That account no longer exists; it may have been deleted elsewhere. The list has been refreshed.";
    case "DUPLICATE_ACCOUNT_NUMBER":
      return "You already track an account with this number.";
    case "VALIDATION_ERROR":
      return "Please correct the highlighted fields.";
    case "IDEMPOTENCY_KEY_REUSED":
      return "This request was already sent with different details. Please try again.";
    case "IDEMPOTENCY_IN_PROGRESS":
      return "Your previous request is still being processed. Wait a moment, then try again.";
    case "PAYLOAD_TOO_LARGE":
      return "That is too much text to save. Shorten the name or the account number.";
    case "ENTITLEMENT_ERROR":
      return `We could not check your plan with Kinde just now, so nothing was added. Your accounts are safe; try again ${wait}.`;
    case "SERVICE_UNAVAILABLE":
      return `The service is busy right now and nothing was changed. Try again ${wait}.`;
    case "INTERNAL_ERROR":
    case "GATEWAY_ERROR":
    case "FUNCTION_ERROR":
      return "Something went wrong on our side. Please try again later.";
    case "FUNCTION_TIMEOUT":
      return "The server took too long to answer. Please try again.";
    default:
      return error.message || `Unexpected answer from the server (HTTP ${error.status}).`;
  }
}

async function call(url, { method = "GET", token, body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, "OFFLINE", "The API cannot be reached.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const retryAfter = response.headers.get("Retry-After");
  const err = data && data.error;
  if (err && typeof err.code === "string") {
    throw new ApiError(response.status, err.code, String(err.message || ""), err, retryAfter);
  }
  throw new ApiError(response.status, "HTTP_" + response.status, "", data, retryAfter);
}

const api = (path) => `${config.apiBaseUrl.replace(/\/$/, "")}${path}`;
const newKey = () =>
  globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;

// The API, each call made with a fresh access token from ``accessToken()`` (Kinde's SDK refreshes
// it when it is near its end); no token means the Kinde sign-in has ended.
export function connectApi(accessToken) {
  const authed = async (url, options = {}) => {
    const token = await accessToken();
    if (!token) throw new ApiError(401, "SIGNED_OUT", "");
    return call(url, { ...options, token });
  };
  return {
    listAccounts: (limit, cursor) => {
      const query = new URLSearchParams({ limit: String(limit) });
      if (cursor) query.set("cursor", cursor);
      return authed(api(`/accounts?${query}`));
    },
    addAccount: (account) =>
      authed(api("/accounts"), { method: "POST", body: account, headers: { "Idempotency-Key": newKey() } }),
    updateAccount: (id, changes) => authed(api(`/accounts/${encodeURIComponent(id)}`), { method: "PATCH", body: changes }),
    deleteAccount: (id) => authed(api(`/accounts/${encodeURIComponent(id)}`), { method: "DELETE" }),
    usage: () => authed(api("/usage")),
    planCheck: (plan) => authed(api(`/plan-check?${new URLSearchParams({ plan })}`)),
  };
}
