// Loaded into a page by the call signaling tests (bundled by esbuild, served on the edge's origin through
// Playwright's routing): the client library as the page sees it, so a test can run several room and call clients
// in one page with options the call page does not offer.
import { CallClient, fetchIceServers } from "../../shared/client/call-client.ts";
import { RoomClient } from "../../shared/client/room-client.ts";

(globalThis as { harness?: unknown }).harness = { RoomClient, CallClient, fetchIceServers };
