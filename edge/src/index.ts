// Worker entry: the Hono app for HTTP and WebSocket upgrades, and the Durable Object classes.
import { createApp } from "./app.ts";

export { Inbox } from "./inbox/inbox.ts";
export { Room } from "./rooms/room.ts";
export { RoomCoordinator } from "./bigrooms/coordinator.ts";
export { RoomRelay } from "./bigrooms/relay.ts";
export { RoomShard } from "./bigrooms/shard.ts";
export { Stream } from "./streams/stream-object.ts";
export { StreamIndex } from "./streams/stream-index.ts";
export { Fleet } from "./fleet/fleet-object.ts";
export { UploadSession } from "./videos/upload-session.ts";
export { LowLatencyStream } from "./llhls/stream-object.ts";
export { LowLatencyRelay } from "./llhls/relay.ts";
export { VideoLibrary } from "./videos/library.ts";

const app = createApp();
export default { fetch: app.fetch } satisfies ExportedHandler<import("./env.ts").Env>;
