import { Server } from "partyserver";
import type { Env } from "../env.ts";

/** One Durable Object per user: notifications to every open connection, stored until read. (Being built: issue 2.) */
export class Inbox extends Server<Env> {
  static override options = { hibernate: true };
}
