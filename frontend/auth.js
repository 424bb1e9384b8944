// Sign-in with Kinde's own browser SDK, kept in vendor/ exactly as published: the authorization code
// flow with PKCE, access tokens it refreshes, sign-out, the plan from Kinde's entitlements, and
// Kinde's self-serve portal, and organizations (which one the token is for, the user's others, a
// switch). The same code runs against a real Kinde and make dev's stand-in.
import createKindeClient, {
  PortalPage,
  generatePortalUrl,
  getEntitlements,
} from "./vendor/kinde-auth-pkce-js-4.5.1.esm.js";
import { config } from "./config.js";

const thisPage = () => `${location.origin}/`;

// The Kinde client, after it has handled a sign-in callback (?code=&state=) if this load is one.
// onSignedIn(user, appState) runs on that callback; onError({error, errorDescription}) on a failure.
export async function connectKinde({ onSignedIn, onError }) {
  const { domain, clientId, redirectUri, logoutUri, audience } = config.kinde;
  const kindeDomain = String(domain).replace(/\/+$/, "");
  const client = await createKindeClient({
    domain: kindeDomain,
    client_id: clientId,
    redirect_uri: redirectUri || thisPage(),
    logout_uri: logoutUri || thisPage(),
    ...(audience ? { audience } : {}),
    on_redirect_callback: onSignedIn,
    on_error_callback: onError,
  });
  return {
    signIn: () => client.login(),
    signOut: () => client.logout(),
    // A valid access token (refreshed when it is near its end), or undefined once signed out.
    accessToken: () => client.getAccessToken(),
    user: () => client.getUser(),
    // The plan Kinde says the user is on (its entitlements' first plan), or null.
    async currentPlan() {
      if (!(await client.getAccessToken())) return null;
      const { plans } = await getEntitlements();
      return plans.length ? plans[0].key : null;
    },
    // The organization the access token is for (Kinde's org_code claim), or null.
    currentOrganization: () => client.getOrganization().orgCode || null,
    // The codes of every organization the user belongs to: the org_codes claim, which Kinde adds
    // when it is switched on in the application's token settings (the SDK reads it from the ID
    // token; it may be added to the access token instead).
    organizations() {
      for (const token of ["id_token", "access_token"]) {
        const claim = client.getClaim("org_codes", token);
        if (claim && Array.isArray(claim.value)) return claim.value.filter((code) => typeof code === "string");
      }
      return [];
    },
    // Sign in again, to another of the user's organizations: Kinde signs a user in to one at a time.
    switchOrganization: (orgCode) => client.login({ orgCode }),
    // Kinde's portal on its plan selection (the organization's, for an organization's member),
    // coming back to returnUrl. What the SDK's portal() does, but a link that cannot be had is
    // thrown (portal() only logs it), so the page can say so.
    async openPlanPortal(returnUrl, { organization = false } = {}) {
      if (!(await client.getAccessToken())) return false;
      const subNav = organization ? PortalPage.organizationPlanSelection : PortalPage.planSelection;
      const { url } = await generatePortalUrl({ domain: kindeDomain, returnUrl, subNav });
      location.assign(url.toString());
      return true;
    },
  };
}
