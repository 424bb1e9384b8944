// Sign-in with Kinde's own browser SDK, kept in vendor/ exactly as published: the authorization code
// flow with PKCE, access tokens it refreshes, sign-out, the plan from Kinde's entitlements, and
// Kinde's self-serve portal. The same code runs against a real Kinde and make dev's stand-in.
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
    // Kinde's portal on its plan selection, coming back to returnUrl. What the SDK's portal() does,
    // but a link that cannot be had is thrown (portal() only logs it), so the page can say so.
    async openPlanPortal(returnUrl) {
      if (!(await client.getAccessToken())) return false;
      const { url } = await generatePortalUrl({ domain: kindeDomain, returnUrl, subNav: PortalPage.planSelection });
      location.assign(url.toString());
      return true;
    },
  };
}
