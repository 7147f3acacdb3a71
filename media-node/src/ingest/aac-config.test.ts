import { describe, expect, it } from "vitest";
import { aacChannelsOfFlvTag, aacConfigChannels } from "./aac-config.ts";

/** AudioSpecificConfig: object type 2 (AAC LC), frequency index 3 (48 kHz), `channels` */
const asc = (channels: number) => Uint8Array.of((2 << 3) | (3 >> 1), ((3 & 1) << 7) | (channels << 3));
/** An FLV audio tag as node-media-server keeps the sequence header: 11-byte header, AAC sound byte, type 0, ASC */
const flvTag = (body: number[]) => Uint8Array.from([8, 0, 0, body.length, 0, 0, 0, 0, 0, 0, 0, ...body]);

describe("AAC channel count from the AudioSpecificConfig", () => {
  it("reads 1 and 2 channels (what FFmpeg and OBS send for mono and stereo)", () => {
    expect(aacConfigChannels(asc(1))).toBe(1);
    expect(aacConfigChannels(asc(2))).toBe(2);
    // FFmpeg's real header for 48 kHz stereo AAC LC: 0x11 0x90
    expect(aacConfigChannels(Uint8Array.of(0x11, 0x90))).toBe(2);
    expect(aacConfigChannels(Uint8Array.of(0x11, 0x88))).toBe(1);
  });

  it("follows the object type and frequency escapes", () => {
    // object type 31 + 6 bits (escape), frequency index 15 + 24 bits, then channel config 2
    const bits = ("11111" + "000001" + "1111" + "0".repeat(24) + "0010").padEnd(48, "0");
    const bytes = Uint8Array.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
    expect(aacConfigChannels(bytes)).toBe(2);
  });

  it("says nothing for config 0 (program config element), reserved configs or a truncated config", () => {
    expect(aacConfigChannels(asc(0))).toBeUndefined();
    expect(aacConfigChannels(asc(9))).toBeUndefined();
    expect(aacConfigChannels(Uint8Array.of(0x11))).toBeUndefined();
    expect(aacConfigChannels(new Uint8Array())).toBeUndefined();
  });

  it("reads it from node-media-server's FLV tag of the sequence header, and only from that", () => {
    const sound = (10 << 4) | 0x0f; // AAC, 44 kHz, 16 bit, stereo flag (which AAC ignores)
    expect(aacChannelsOfFlvTag(flvTag([sound, 0, ...asc(2)]))).toBe(2);
    expect(aacChannelsOfFlvTag(flvTag([sound, 0, ...asc(1)]))).toBe(1);
    expect(aacChannelsOfFlvTag(flvTag([sound, 1, 0x21, 0x10]))).toBeUndefined(); // a raw AAC frame, not the header
    expect(aacChannelsOfFlvTag(flvTag([(2 << 4) | 0x0f, 0, 0x11, 0x90]))).toBeUndefined(); // MP3
    expect(aacChannelsOfFlvTag(Uint8Array.of(8, 0, 0))).toBeUndefined();
    expect(aacChannelsOfFlvTag(null)).toBeUndefined();
  });
});
