// A Streams API stream's renditions after the media node shed rungs (`stream.degraded`): pure fold of the
// stream object's events, in every delivery order.
import { describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { newRecord, nextStreamRecord, type StreamRecord } from "./model.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0 + s * 1000);
const meta = (s: number) => ({ source: "media-node/n", subject: "stream/str_a", time: at(s) });
const r = (name: string) => ({ name, bandwidth: 1000, codecs: "avc1.64001f" });
const FULL = ["1080p", "720p", "480p", "audio"];

const started = (s: number, broadcastId = "b1") => makeEvent("stream.started", { streamId: "str_a", nodeId: "n", app: "live", resumed: false, broadcastId }, meta(s)) as Envelope;
const live = (s: number, broadcastId = "b1") =>
  makeEvent("stream.live", { streamId: "str_a", nodeId: "n", playbackUrl: "https://cdn.example/m.m3u8", renditions: FULL.map(r), broadcastId }, meta(s)) as Envelope;
const degraded = (s: number, kept: string[], broadcastId = "b1") =>
  makeEvent("stream.degraded", { streamId: "str_a", nodeId: "n", broadcastId, renditions: kept.map(r), shed: ["1080p"], speed: 0.7 }, meta(s)) as Envelope;

const fresh = (): StreamRecord => newRecord({ id: "str_a", ownerId: "u_1", body: {}, now: T0 });
const fold = (events: Envelope[]) => events.reduce(nextStreamRecord, fresh());
const names = (s: StreamRecord) => s.current?.renditions.map((x) => x.name);

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

describe("stream record: stream.degraded", () => {
  it("lists the renditions kept after a shed, whatever order the events arrive in", () => {
    expect(names(fold([started(0), live(3)]))).toEqual(FULL);
    for (const order of permutations([started(0), live(3), degraded(10, ["720p", "480p", "audio"]), degraded(20, ["480p", "audio"])])) {
      expect(names(fold(order)), order.map((e) => e.type).join(",")).toEqual(["480p", "audio"]);
    }
  });

  it("ignores a shed of another broadcast, and a new broadcast lists its full ladder", () => {
    expect(names(fold([started(0), live(3), degraded(10, ["480p"], "b0")]))).toEqual(FULL);
    expect(names(fold([started(0), live(3), degraded(10, ["480p"]), started(40, "b2"), live(43, "b2")]))).toEqual(FULL);
  });
});
