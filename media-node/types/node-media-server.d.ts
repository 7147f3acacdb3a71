// node-media-server 4.4 ships no typings (and @types/node-media-server describes v2). Only what
// media-node/src/ingest/rtmp-server.ts touches is declared; keep it that way so nothing else leans on NMS.

declare module "node-media-server" {
  import type { Socket } from "node:net";

  export interface NmsConfig {
    bind?: string;
    rtmp?: { port?: number };
    rtmps?: { port?: number; key?: string; cert?: string };
    http?: { port?: number };
    store?: { path?: string; flushInterval?: number; durability?: string };
    record?: { auto?: boolean; path?: string };
    webadmin?: { enable?: boolean };
    auth?: { play?: boolean; publish?: boolean; secret?: string };
  }

  /** One connection (RTMP publisher or player). Fields are filled in as the RTMP handshake progresses. */
  export interface NmsSession {
    readonly id: string;
    /** "address:port" of the peer */
    readonly ip: string;
    readonly protocol: string;
    /** "/<app>/<name>", empty when NMS rejected the names (then `rtmp.streamName` still has what was sent) */
    readonly streamPath: string;
    readonly streamApp: string;
    readonly streamName: string;
    readonly streamQuery: Record<string, string | string[] | undefined>;
    readonly isPublisher: boolean;
    readonly inBytes: number;
    readonly outBytes: number;
    /** set from the publisher's onMetaData (0 until it arrives, undefined if the field is absent) */
    readonly videoCodec: number | undefined;
    readonly videoWidth: number | undefined;
    readonly videoHeight: number | undefined;
    readonly videoFramerate: number | undefined;
    readonly audioCodec: number | undefined;
    readonly audioChannels: number | undefined;
    readonly audioSamplerate: number | undefined;
    readonly socket?: Socket;
    readonly rtmp?: { streamApp?: string; streamName?: string };
    close(): void;
  }

  export type NmsEvent = "prePublish" | "postPublish" | "donePublish" | "prePlay" | "postPlay" | "donePlay";

  export default class NodeMediaServer {
    constructor(config: NmsConfig, configPath?: string);
    on(event: NmsEvent, listener: (session: NmsSession) => void): void;
    run(): Promise<void>;
    stop(): Promise<void>;
    rtmpServer: {
      tcpServer?: import("node:net").Server;
      tlsServer?: import("node:net").Server;
      handleListenError: unknown;
      /** the connection listener both servers were created with: wraps a socket in an RTMP session */
      handleRequest(socket: Socket): void;
    };
    httpServer: unknown;
  }
}
