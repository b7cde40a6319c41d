// Generated from the event models (domain/events.py) by `mailroom schema --out schema`:
// do not edit. The JSON Schema beside this file (event.schema.json) checks
// what types cannot: patterns, lengths, formats.

/** Every event type mailroom accepts. */
export type EventType =
  | "user.signup_requested"
  | "login.code_requested"
  | "email.change_requested"
  | "password.reset_requested"
  | "invite.created"
  | "password.changed"
  | "email.changed";

/** Any mailroom event. Publish its JSON as the field `event` of an XADD to the Redis stream `mailroom:events`; at most 16384 bytes. */
export type MailroomEvent =
  | SignupEvent
  | LoginCodeEvent
  | EmailChangeEvent
  | PasswordResetEvent
  | InviteEvent
  | PasswordChangedEvent
  | EmailChangedEvent;

/** The data an event of type T carries. */
export type EventData<T extends EventType> = Extract<MailroomEvent, { type: T }>["data"];

export interface SignupEvent {
  /** Envelope version. */
  version: 1;
  /** A UUID, unique per event: mailroom acts once per id, however often it arrives. */
  id: string;
  /** The publishing app's id: a-z 0-9 _ . -, at most 64 characters. */
  source: string;
  /** When it happened at the producer: an RFC 3339 string with an offset, such as new Date().toISOString() gives; not a number. */
  occurred_at: string;
  /** The event type; it decides the shape of data. */
  type: "user.signup_requested";
  /** The type's payload. */
  data: SignupRequested;
}

export interface SignupRequested {
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  email: string;
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   * @default null
   */
  user_id?: string | null;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   * @default null
   */
  name?: string | null;
  /**
   * Pattern: ^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$
   * At most 35 characters.
   * @default null
   */
  locale?: string | null;
}

export interface LoginCodeEvent {
  /** Envelope version. */
  version: 1;
  /** A UUID, unique per event: mailroom acts once per id, however often it arrives. */
  id: string;
  /** The publishing app's id: a-z 0-9 _ . -, at most 64 characters. */
  source: string;
  /** When it happened at the producer: an RFC 3339 string with an offset, such as new Date().toISOString() gives; not a number. */
  occurred_at: string;
  /** The event type; it decides the shape of data. */
  type: "login.code_requested";
  /** The type's payload. */
  data: LoginCodeRequested;
}

export interface LoginCodeRequested {
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  email: string;
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   */
  user_id: string;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   * @default null
   */
  name?: string | null;
  /**
   * Pattern: ^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$
   * At most 35 characters.
   * @default null
   */
  locale?: string | null;
}

export interface EmailChangeEvent {
  /** Envelope version. */
  version: 1;
  /** A UUID, unique per event: mailroom acts once per id, however often it arrives. */
  id: string;
  /** The publishing app's id: a-z 0-9 _ . -, at most 64 characters. */
  source: string;
  /** When it happened at the producer: an RFC 3339 string with an offset, such as new Date().toISOString() gives; not a number. */
  occurred_at: string;
  /** The event type; it decides the shape of data. */
  type: "email.change_requested";
  /** The type's payload. */
  data: EmailChangeRequested;
}

export interface EmailChangeRequested {
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   */
  user_id: string;
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  current_email: string;
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  new_email: string;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   * @default null
   */
  name?: string | null;
  /**
   * Pattern: ^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$
   * At most 35 characters.
   * @default null
   */
  locale?: string | null;
}

export interface PasswordResetEvent {
  /** Envelope version. */
  version: 1;
  /** A UUID, unique per event: mailroom acts once per id, however often it arrives. */
  id: string;
  /** The publishing app's id: a-z 0-9 _ . -, at most 64 characters. */
  source: string;
  /** When it happened at the producer: an RFC 3339 string with an offset, such as new Date().toISOString() gives; not a number. */
  occurred_at: string;
  /** The event type; it decides the shape of data. */
  type: "password.reset_requested";
  /** The type's payload. */
  data: PasswordResetRequested;
}

export interface PasswordResetRequested {
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  email: string;
  account_exists: boolean;
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   * @default null
   */
  user_id?: string | null;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   * @default null
   */
  name?: string | null;
  /**
   * Pattern: ^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$
   * At most 35 characters.
   * @default null
   */
  locale?: string | null;
}

export interface InviteEvent {
  /** Envelope version. */
  version: 1;
  /** A UUID, unique per event: mailroom acts once per id, however often it arrives. */
  id: string;
  /** The publishing app's id: a-z 0-9 _ . -, at most 64 characters. */
  source: string;
  /** When it happened at the producer: an RFC 3339 string with an offset, such as new Date().toISOString() gives; not a number. */
  occurred_at: string;
  /** The event type; it decides the shape of data. */
  type: "invite.created";
  /** The type's payload. */
  data: InviteCreated;
}

export interface InviteCreated {
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   */
  invite_id: string;
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  email: string;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   */
  inviter_name: string;
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   */
  workspace_id: string;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   */
  workspace_name: string;
  /**
   * Pattern: ^[a-z][a-z0-9_-]*$
   * 1-32 characters.
   */
  role: string;
  /** @default false */
  existing_user?: boolean;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   * @default null
   */
  name?: string | null;
  /**
   * Pattern: ^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$
   * At most 35 characters.
   * @default null
   */
  locale?: string | null;
}

export interface PasswordChangedEvent {
  /** Envelope version. */
  version: 1;
  /** A UUID, unique per event: mailroom acts once per id, however often it arrives. */
  id: string;
  /** The publishing app's id: a-z 0-9 _ . -, at most 64 characters. */
  source: string;
  /** When it happened at the producer: an RFC 3339 string with an offset, such as new Date().toISOString() gives; not a number. */
  occurred_at: string;
  /** The event type; it decides the shape of data. */
  type: "password.changed";
  /** The type's payload. */
  data: PasswordChanged;
}

export interface PasswordChanged {
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  email: string;
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   */
  user_id: string;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   * @default null
   */
  name?: string | null;
  /**
   * Pattern: ^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$
   * At most 35 characters.
   * @default null
   */
  locale?: string | null;
}

export interface EmailChangedEvent {
  /** Envelope version. */
  version: 1;
  /** A UUID, unique per event: mailroom acts once per id, however often it arrives. */
  id: string;
  /** The publishing app's id: a-z 0-9 _ . -, at most 64 characters. */
  source: string;
  /** When it happened at the producer: an RFC 3339 string with an offset, such as new Date().toISOString() gives; not a number. */
  occurred_at: string;
  /** The event type; it decides the shape of data. */
  type: "email.changed";
  /** The type's payload. */
  data: EmailChanged;
}

export interface EmailChanged {
  /**
   * Pattern: ^[A-Za-z0-9][A-Za-z0-9_.:@-]*$
   * 1-128 characters.
   */
  user_id: string;
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  old_email: string;
  /**
   * A bare mailbox address: no display name, quoted local part, IP literal or encoded word. mailroom also refuses reserved domains (.local, .test, localhost...), which no pattern tells.
   * 3-254 characters.
   */
  new_email: string;
  /**
   * Free text: no control characters (CR, LF, tab...), no encoded words (=?...?=), no leading or trailing whitespace.
   * 1-100 characters.
   * @default null
   */
  name?: string | null;
  /**
   * Pattern: ^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$
   * At most 35 characters.
   * @default null
   */
  locale?: string | null;
}
