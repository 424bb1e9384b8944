"""The stand-in's own pages, playing Kinde's hosted ones: sign-in, the portal's plan selection, and
the messages in between. Plain HTML with one inline style sheet (allowed by its hash), no script."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

from local.kinde.account_api import DEFAULT_PLAN, PlanLimits
from local.kinde.organizations import DEFAULT_ORGANIZATION
from local.kinde.portal import PortalSession

APP_NAME = "Plan Guard"
STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1c1c28;background:#f2f2f7}
.bar{background:#1c1c28;color:#fff;padding:.75rem 1rem}
.brand{margin:0;font-weight:700}.brand span{font-weight:400;color:#d7d7e0}
main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:12px;
border:1px solid #d7d7e0}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:0 0 .25rem}
label,legend{display:block;font-weight:600;margin:.75rem 0 .25rem}
fieldset{border:1px solid #d7d7e0;border-radius:8px;margin:1rem 0;padding:.25rem .75rem .75rem}
.choice{display:flex;gap:.5rem;align-items:center;margin:.35rem 0}.choice label{margin:0;font-weight:400}
input[type=text],input[type=number],select{width:100%;padding:.5rem;font:inherit;border:1px solid #6b6b80;
border-radius:6px}
.choice input[type=number]{width:7rem}
button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;font:inherit;font-weight:600;
color:#fff;background:#1c1c28;border:0;border-radius:6px;text-decoration:none;cursor:pointer}
.muted,.hint{color:#4a4a5c}.hint{font-size:.9rem;margin:.25rem 0 0}
.error{color:#a4161a;font-weight:600}
.result{border-radius:8px;padding:.75rem 1rem;margin:1rem 0}
.ok{background:#e6f4ea;border:1px solid #2e7d32}.denied{background:#fdecea;border:1px solid #a4161a}
.reasons{margin:.25rem 0}
"""
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src data:; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: with it a browser sends "Origin: null" on the page's own form posts
    "Referrer-Policy": "same-origin",
}


def page(title: str, body: str) -> bytes:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{escape(title)} · Kinde (local stand-in)</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        '<header class="bar"><p class="brand">Kinde <span>· local stand-in</span></p></header>\n'
        f'<main id="main">\n{body}\n</main>\n</body>\n</html>\n'
    ).encode()


def message_page(title: str, message: str, link: tuple[str, str] | None = None) -> bytes:
    back = f'<p><a class="button" href="{escape(link[0])}">{escape(link[1])}</a></p>' if link else ""
    return page(title, f"<h1>{escape(title)}</h1>\n<p>{escape(message)}</p>\n{back}")


def _limits(limits: Mapping[str, int | None]) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {'unlimited' if v is None else v}" for k, v in limits.items())


def sign_in_page(
    fields: Mapping[str, str],
    plans: PlanLimits,
    *,
    user: str = "kp_alice",
    plan: str = "",
    org: str = "",
    error: str = "",
) -> bytes:
    """Kinde's hosted sign-in, played: any user id, the organization to sign in to, and the plan to
    put that user (or that organization) on."""
    hidden = "\n".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    options = "\n".join(
        f'<option value="{escape(code)}"{" selected" if code == plan else ""}>'
        f"{escape(code)} ({escape(_limits(limits))})</option>"
        for code, limits in plans.items()
    )
    alert = f'<p id="signin-error" class="error" role="alert">{escape(error)}</p>' if error else ""
    body = f"""<h1>Sign in to {APP_NAME}</h1>
<p class="muted">This local Kinde stand-in plays Kinde's sign-in page: sign in as any user, on any plan.</p>
{alert}
<form method="post" action="/oauth2/auth">
{hidden}
<label for="user">User id</label>
<input type="text" id="user" name="user" value="{escape(user)}" autocomplete="username" spellcheck="false"
 required aria-describedby="user-help">
<p id="user-help" class="hint">For example kp_alice. A new id is a new user.</p>
<label for="org">Organization code</label>
<input type="text" id="org" name="org" value="{escape(org)}" spellcheck="false" aria-describedby="org-help">
<p id="org-help" class="hint">For example org_acme: the user joins it when new to it. Empty: the user's
 first organization, or Kinde's default one ({DEFAULT_ORGANIZATION}).</p>
<label for="plan">Plan</label>
<select id="plan" name="plan" aria-describedby="plan-help">
<option value=""{" selected" if not plan else ""}>Keep the user's plan</option>
{options}
</select>
<p id="plan-help" class="hint">A new user or organization starts on {DEFAULT_PLAN}; with an organization
 code this is the organization's plan. Kinde billing would set this.</p>
<button type="submit" id="sign-in">Sign in</button>
</form>"""
    return page(f"Sign in to {APP_NAME}", body)


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%H:%M:%S UTC")
    except ValueError:
        return iso


def _result(answer: Mapping[str, Any]) -> str:
    """A plan change's answer as Kinde's portal shows it: denied with the workflow's message and
    reasons, accepted (now, later, or with a failed payment), or not run."""
    plan, requested = escape(str(answer.get("plan"))), escape(str(answer.get("requested")))
    if answer.get("error"):
        title, kind = "Your plan did not change", "denied"
        text = f"<p>The plan change could not go through: {escape(str(answer['error']))}.</p>"
    elif not answer.get("allowed"):
        title, kind = "Plan change denied", "denied"
        reasons = "".join(f"<li>{escape(str(r))}</li>" for r in answer.get("reasons") or [])
        text = f'<p class="deny-message">{escape(str(answer.get("message") or ""))}</p>'
        text += f'<ul class="reasons">{reasons}</ul>' if reasons else ""
    elif answer.get("applyAt"):
        title, kind = "Plan change accepted", "ok"
        when = escape(_when(str(answer["applyAt"])))
        text = f"<p>{requested} applies at {when}. Until then you stay on {plan}.</p>"
    elif answer.get("plan") != answer.get("requested"):
        title, kind = "Plan change accepted, payment failed", "denied"
        text = f"<p>The payment for {requested} did not go through.</p>"
    else:
        title, kind = "Plan changed", "ok"
        text = ""
    return (
        f'<section id="result" class="result {kind}" role="status" aria-labelledby="result-title">'
        f'<h2 id="result-title">{title}</h2>{text}<p>You are on <strong>{plan}</strong>.</p></section>'
    )


def portal_page(
    session: PortalSession, plans: PlanLimits, current: str, pending: tuple[str, float] | None
) -> bytes:
    """The portal's plan selection: the plans but the current one, and when Kinde applies the change."""
    waiting = ""
    if pending is not None:
        at = datetime.fromtimestamp(pending[1], UTC).isoformat()
        waiting = (
            f'<p id="pending">A change to {escape(pending[0])} is waiting: it applies at {_when(at)}.</p>'
        )
    others = [code for code in plans if code != current]
    radios = "\n".join(
        f'<div class="choice"><input type="radio" id="plan-{escape(code)}" name="plan" value="{escape(code)}"'
        f'{" checked" if i == 0 else ""}><label for="plan-{escape(code)}">{escape(code)} '
        f"({escape(_limits(plans[code]))})</label></div>"
        for i, code in enumerate(others)
    )
    section = (
        ""
        if session.subnav == "plan_selection"
        else f'<p class="muted">The stand-in plays only the plan selection of the portal '
        f"(asked for: {escape(session.subnav)}).</p>"
    )
    alert = (
        f'<p id="portal-error" class="error" role="alert">{escape(session.error)}</p>'
        if session.error
        else ""
    )
    form = f"""<form method="post">
<fieldset><legend>Choose a plan</legend>
{radios}
</fieldset>
<fieldset><legend>When the payment goes through</legend>
<div class="choice"><input type="radio" id="when-now" name="when" value="now" checked>
<label for="when-now">At once</label></div>
<div class="choice"><input type="radio" id="when-later" name="when" value="later">
<label for="when-later">After a delay of</label>
<input type="number" id="delay" name="delay" min="1" step="1" value="60" aria-label="Delay in seconds">
<span>seconds</span></div>
<div class="choice"><input type="radio" id="when-fails" name="when" value="fails">
<label for="when-fails">Never: the payment fails</label></div>
</fieldset>
<button type="submit" id="change-plan">Change plan</button>
</form>"""
    body = f"""<h1>Your plan</h1>
<p>Signed in as <strong>{escape(session.user)}</strong>,
 on the <strong id="current-plan">{escape(current)}</strong> plan.</p>
{waiting}
{section}
{_result(session.result) if session.result else ""}
{alert}
{form if others else "<p>There is no other plan to choose.</p>"}
<p><a class="button" id="return" href="{escape(session.return_url)}">Back to {APP_NAME}</a></p>"""
    return page("Your plan", body)
