// Kinde's own webhook decoder over the tokens the parity test signs (tests/integration/test_webhook_parity.py).
// stdin: {"domain": "http://127.0.0.1:port", "tokens": {"name": "<jwt>", ...}}
// stdout: {"name": {"accepted": bool, "message": why not, from the validator decodeWebhook runs}, ...}
import { decodeWebhook } from "@kinde/webhooks";
import { validateToken } from "@kinde/jwt-validator";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { domain, tokens } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const answers = {};
for (const [name, token] of Object.entries(tokens)) {
  // decodeWebhook answers the claims or null, with no reason; validateToken is the check it runs
  // (@kinde/jwt-validator, the same version it depends on), asked again only for the message.
  const decoded = await decodeWebhook(token, domain);
  const validated = await validateToken({ token, domain });
  answers[name] = {
    accepted: decoded !== null,
    validatorAgrees: validated.valid === (decoded !== null),
    message: validated.valid ? null : validated.message,
  };
}
process.stdout.write(JSON.stringify(answers));
