// The Pulsecast client library: rooms, the inbox and uploads, for browsers and Node 22. README "Client library".
export { RoomClient, type ChatMessage, type PresenceEntry, type RoomInfo, type RoomClientEvents, type RoomClientOptions, type RoomClientError, type ConnectionState, type StatusChange, type StreamInfo, type WebSocketCtor } from "./room-client.ts";
export { InboxClient, type InboxNotification, type InboxClientEvents, type InboxClientOptions } from "./inbox-client.ts";
export { startUpload, UploadRefused, videoIdOfUploadUrl, type UploadHandle, type UploadOptions } from "./upload.ts";
export { tokenExpiry, type TokenReason, type TokenSource } from "./token.ts";
export { CallClient, fetchIceServers, type CallClientEvents, type CallClientOptions, type CallError, type CallPeer, type CallState, type CallStats, type IceServersAnswer, type MediaState, type RemotePeer, type Slot } from "./call-client.ts";
export type { SignalMessage, SignalRefusal } from "./signal-queue.ts";
