// A mailroom producer for Node.js: build an event, check it against mailroom's
// JSON Schema, then append it to the Redis stream the workers read.
//
// The schema (schema/event.schema.json at the top of the mailroom checkout, or
// the output of `mailroom schema`) is generated from the models the workers
// validate with. An event it refuses would become an `invalid_event` dead
// letter that only an operator sees; checked here, the producer learns at once.
// Copy the schema into your app and point MAILROOM_SCHEMA at it.

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

/** @typedef {import("../../schema/mailroom-events.js").MailroomEvent} MailroomEvent */
/** @typedef {import("../../schema/mailroom-events.js").EventType} EventType */
/**
 * @template {EventType} T
 * @typedef {import("../../schema/mailroom-events.js").EventData<T>} EventData
 */

/** The stream the workers read, and the one field an entry holds. */
export const STREAM = "mailroom:events";
export const FIELD = "event";

const schemaPath =
  process.env.MAILROOM_SCHEMA ?? new URL("../../schema/event.schema.json", import.meta.url);
// verbose: a pattern error can then quote the rule's description.
const ajv = new Ajv2020({ verbose: true });
addFormats.default(ajv); // ajv-formats is CommonJS: from a module, its function is .default
const validate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));

/** An event the workers would refuse: nothing was published. */
export class InvalidEvent extends Error {
  name = "InvalidEvent";
}

/**
 * A new event of `type` around `data`: a fresh id, the current time.
 * @template {EventType} T
 * @param {T} type
 * @param {EventData<T>} data
 * @param {string} source your app's id
 * @returns {Extract<MailroomEvent, { type: T }>}
 */
export function newEvent(type, data, source) {
  const event = {
    version: 1,
    id: randomUUID(),
    type,
    source,
    occurred_at: new Date().toISOString(), // a string with an offset, never Date.now()
    data,
  };
  return /** @type {Extract<MailroomEvent, { type: T }>} */ (/** @type {unknown} */ (event));
}

/**
 * Why the workers would refuse `event`, in one line ("data.user_id: must be
 * string,null"), or null when the schema accepts it.
 * @param {unknown} event
 * @returns {string | null}
 */
export function problemWith(event) {
  if (validate(event)) return null;
  // The first error is the innermost; "if" only says which type's rules failed.
  const error = (validate.errors ?? []).find((e) => e.keyword !== "if");
  if (!error) return "event: does not match the schema";
  const where = error.instancePath.slice(1).replaceAll("/", ".") || "event";
  switch (error.keyword) {
    case "additionalProperties":
      return `${where}: unknown field ${JSON.stringify(error.params.additionalProperty)}`;
    case "pattern":
      return `${where}: invalid. ${error.parentSchema?.description ?? error.message}`;
    case "enum":
      return `${where}: must be one of ${error.params.allowedValues.join(", ")}`;
    default:
      return `${where}: ${error.message}`;
  }
}

/**
 * Check `event` against the schema, then append it to the stream; return its id.
 * Throws InvalidEvent, publishing nothing, when the workers would refuse it.
 * @param {{ xAdd(key: string, id: string, message: Record<string, string>): Promise<unknown> }} client
 *   a connected node-redis client
 * @param {unknown} event
 * @returns {Promise<string>}
 */
export async function publish(client, event) {
  const problem = problemWith(event);
  if (problem) throw new InvalidEvent(problem);
  await client.xAdd(STREAM, "*", { [FIELD]: JSON.stringify(event) });
  return /** @type {MailroomEvent} */ (event).id;
}
