// The dashboard's one config file: where the API is, and how to reach Kinde. Edit this file (no
// build step) to point the same page at a deployed stack; see the README's "Dashboard" section.
export const config = {
  // "" = the origin serving this page (make dev). A deployed stack: its ApiUrl output, e.g.
  // "https://abc123.execute-api.eu-west-1.amazonaws.com" (add this page's origin to the
  // template's CorsAllowedOrigins parameter, or the browser will block the calls).
  apiBaseUrl: "",
  kinde: {
    // The local Kinde stand-in's dev routes (/dev/token and /dev/plan), which make dev's gateway
    // passes on. null with a real Kinde: sign in by pasting an access token.
    devStandIn: "/dev",
    // A real Kinde: your domain (shown on the sign-in form) and the page where users change plan.
    issuerUrl: "",
    planPortalUrl: "",
  },
  // Plan codes as configured in Kinde billing (the same as the backend's PLAN_LIMITS).
  plans: ["free", "pro"],
  // Accounts per page (GET /accounts?limit=); ?pageSize=N in the page's URL overrides it.
  pageSize: 10,
};
