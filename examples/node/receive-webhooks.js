// A mailroom webhook receiver for Node.js: verify each request the Standard
// Webhooks way (the `standardwebhooks` package), drop repeats, act on the outcome.
//
//   MAILROOM_WEBHOOK_SECRET=whsec_... PORT=3000 node receive-webhooks.js
//
// It prints each new, verified outcome as one JSON line; in your app, tell the
// user "we could not deliver to that address" on `email.bounced`, say.

import { createServer } from "node:http";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

const hook = new Webhook(process.env.MAILROOM_WEBHOOK_SECRET);
const path = process.env.WEBHOOK_PATH ?? "/hooks/mailroom";
// A webhook comes at least once: keep the ids you handled (in your database,
// for longer than mailroom retries; a Set only lives as long as this process).
const handled = new Set();

function answer(response, status) {
  response.writeHead(status, { "content-length": "0" }).end();
}

const server = createServer((request, response) => {
  if (request.method !== "POST" || request.url !== path) return answer(response, 404);
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let payload;
    try {
      // The raw body, exactly as it came: parsing it first would change what was signed.
      payload = hook.verify(Buffer.concat(chunks).toString("utf8"), request.headers);
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
      console.error(`refused: ${error.message}`);
      return answer(response, 400);
    }
    const id = request.headers["webhook-id"];
    if (!handled.has(id)) {
      handled.add(id);
      console.log(JSON.stringify({ id, type: payload.type, data: payload.data }));
    }
    answer(response, 204);
  });
});

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.error(`listening on ${server.address().port}`);
});
