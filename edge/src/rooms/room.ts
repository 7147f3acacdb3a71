import { Server } from "partyserver";
import type { Env } from "../env.ts";

/** One Durable Object per room: presence, chat history, live comments, signaling. (Being built: issue 2.) */
export class Room extends Server<Env> {
  static override options = { hibernate: true };
}
