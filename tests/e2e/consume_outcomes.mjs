// A Node.js app reading mailroom:outcomes through its own consumer group (node-redis 6),
// as the README shows it; it prints each outcome as one JSON line and stops after WANT
// of them (or when none came for WAIT_MS), acknowledging each one it handled.
import { createClient } from "redis";

const STREAM = "mailroom:outcomes";
const GROUP = process.env.GROUP; // one group per app: each group gets every entry
const CONSUMER = `node-${process.pid}`;
const WANT = Number(process.env.WANT);
const WAIT_MS = 5000;

const client = createClient({ url: process.env.REDIS_URL });
await client.connect();
try {
  // "0": from the oldest entry the stream still holds; "$": only what comes next.
  await client.xGroupCreate(STREAM, GROUP, "0", { MKSTREAM: true });
} catch (error) {
  if (!error.message.startsWith("BUSYGROUP")) throw error; // it exists: carry on
}

let seen = 0;
while (seen < WANT) {
  const batches = await client.xReadGroup(
    GROUP,
    CONSUMER,
    { key: STREAM, id: ">" },
    { COUNT: 100, BLOCK: WAIT_MS },
  );
  if (!batches) break; // nothing for WAIT_MS
  for (const { messages } of batches) {
    for (const { id, message } of messages) {
      const outcome = JSON.parse(message.outcome);
      console.log(JSON.stringify(outcome)); // an app would act on outcome.status here
      await client.xAck(STREAM, GROUP, id);
      seen += 1;
    }
  }
}
await client.close();
