import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";

/** Edge -> media side outbox with alarm-driven retries. (Being built: issue 4.) */
export class EventOutbox extends DurableObject<Env> {}
