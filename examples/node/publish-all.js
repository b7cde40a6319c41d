// Publishes one event of every type mailroom accepts, each checked against the
// schema first, then shows a mistaken event refused before it is published.
//
//   npm install && REDIS_URL=redis://localhost:6379/0 node publish-all.js

import { createClient } from "redis";
import { InvalidEvent, newEvent, publish } from "./mailroom.js";

/** Your app's id: the `source` of its events. */
const SOURCE = "notes";

const events = [
  newEvent("user.signup_requested", { email: "ada@example.com", name: "Ada", locale: "en" }, SOURCE),
  newEvent("login.code_requested", { email: "ada@example.com", user_id: "u_123" }, SOURCE),
  newEvent(
    "email.change_requested",
    { user_id: "u_123", current_email: "ada@example.com", new_email: "ada@example.org" },
    SOURCE,
  ),
  newEvent(
    "password.reset_requested",
    { email: "ada@example.com", account_exists: true, user_id: "u_123" },
    SOURCE,
  ),
  newEvent(
    "invite.created",
    {
      invite_id: "inv_9",
      email: "grace@example.com",
      inviter_name: "Ada",
      workspace_id: "w_1",
      workspace_name: "Analytical Engines",
      role: "member",
      existing_user: false,
    },
    SOURCE,
  ),
  newEvent("password.changed", { email: "ada@example.com", user_id: "u_123" }, SOURCE),
  newEvent(
    "email.changed",
    { user_id: "u_123", old_email: "ada@example.com", new_email: "ada@example.net" },
    SOURCE,
  ),
];

const client = createClient({ url: process.env.REDIS_URL ?? "redis://localhost:6379/0" });
client.on("error", (error) => console.error("redis:", error.message));
await client.connect();
try {
  for (const event of events) {
    console.log(`published ${event.type} ${await publish(client, event)}`);
  }

  // A time as a number: the schema refuses it, and so does TypeScript.
  /** @type {import("../../schema/mailroom-events.js").SignupEvent} */
  const mistaken = {
    ...newEvent("user.signup_requested", { email: "ada@example.com" }, SOURCE),
    // @ts-expect-error occurred_at is a string (new Date().toISOString()), not a number
    occurred_at: Date.now(),
  };
  try {
    await publish(client, mistaken);
    throw new Error("the schema let a numeric occurred_at through");
  } catch (error) {
    if (!(error instanceof InvalidEvent)) throw error;
    console.log(`refused before publishing: ${error.message}`);
  }
} finally {
  await client.close();
}
