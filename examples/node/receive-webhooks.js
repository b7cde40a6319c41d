// A mailroom webhook receiver for Node.js: verify each request the Standard
// Webhooks way (the `standardwebhooks` package), drop repeats, act on the outcome.
//
//   MAILROOM_WEBHOOK_SECRET=whsec_... PORT=3000 node receive-webhooks.js
//
// It prints each new, verified outcome as one JSON line; in your app, tell the
// user "we could not deliver to that address" on `email.bounced`, say.

import { createServer } from "node:http";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

const secret = process.env.MAILROOM_WEBHOOK_SECRET;
if (!secret) {
  console.error("set MAILROOM_WEBHOOK_SECRET to the app's webhook_secret (whsec_...)");
  process.exit(2);
}
const hook = new Webhook(secret);
const path = process.env.WEBHOOK_PATH ?? "/hooks/mailroom";
// A webhook comes at least once: keep the ids you handled (in your database,
// for longer than mailroom retries; a Set only lives as long as this process).
const handled = new Set();

/**
 * @param {import("node:http").ServerResponse} response
 * @param {number} status
 */
function answer(response, status) {
  response.writeHead(status, { "content-length": "0" }).end();
}

const server = createServer((request, response) => {
  if (request.method !== "POST" || request.url !== path) return answer(response, 404);
  /** @type {Buffer[]} */
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const headers = /** @type {Record<string, string>} */ (request.headers);
    /** @type {{ type: string, data: Record<string, unknown> }} */
    let payload;
    try {
      // The raw body, exactly as it came: parsing it first would change what was signed.
      payload = /** @type {any} */ (hook.verify(Buffer.concat(chunks).toString("utf8"), headers));
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
      console.error(`refused: ${error.message}`);
      return answer(response, 400);
    }
    const id = headers["webhook-id"];
    if (!handled.has(id)) {
      handled.add(id);
      console.log(JSON.stringify({ id, type: payload.type, data: payload.data }));
    }
    answer(response, 204);
  });
});

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  console.error(`listening on ${address.port}`);
});
