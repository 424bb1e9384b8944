// The dashboard's one config file: where the API is, and the Kinde application it signs in with.
// Edit it (no build step) to point the same page at a deployed stack and your Kinde business; see
// "Connect a real Kinde" in docs/DASHBOARD.md. make dev serves it with kinde.domain set to the issuer
// its API trusts (its Kinde stand-in, or KINDE_ISSUER_URL), whatever ports it runs on.
export const config = {
  // "" = the origin serving this page (make dev, or CloudFront in front of the API). Elsewhere: the
  // stack's ApiUrl output (and add this page's origin to the template's CorsAllowedOrigins).
  apiBaseUrl: "",
  kinde: {
    // The Kinde domain, i.e. the issuer (https://yourapp.kinde.com, or your custom domain), and
    // the client id of your Kinde SPA application. The values below are the local stand-in's.
    domain: "http://127.0.0.1:3001",
    clientId: "plan-guard-dev",
    // "" = this page's origin + "/" (register that URL as callback and logout URL in Kinde).
    redirectUri: "",
    logoutUri: "",
    // The API's audience, when the API checks one (KINDE_AUDIENCE); "" = none.
    audience: "",
  },
  // Plan codes as configured in Kinde billing (the same as the backend's PLAN_LIMITS).
  plans: ["free", "pro"],
  // Accounts per page (GET /accounts?limit=); ?pageSize=N in the page's URL overrides it.
  pageSize: 10,
};
