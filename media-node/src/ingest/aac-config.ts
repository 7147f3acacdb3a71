// The real channel count of an AAC broadcast. RTMP metadata (onMetaData) only has a `stereo` flag, and
// node-media-server reads a missing flag as mono, so metadata alone cannot say "mono". The AAC sequence header
// (the first audio packet, which the ingest keeps for late players) holds the AudioSpecificConfig the decoder
// itself uses (ISO 14496-3 1.6.2.1): 5 bits object type (31 = escape, 6 more bits), 4 bits sampling frequency
// index (15 = escape, 24 more bits of explicit frequency), 4 bits channel configuration (0 = given in a program
// config element, which is not read here). Pure.

/** FLV tag header length before the body (type, size, timestamp, stream id). */
const FLV_TAG_HEADER = 11;
const FLV_SOUND_FORMAT_AAC = 10;

/** Channels announced by an AudioSpecificConfig; undefined when it does not say (config 0) or is too short. */
export function aacConfigChannels(asc: Uint8Array): number | undefined {
  let bit = 0;
  const read = (n: number): number | undefined => {
    if (bit + n > asc.length * 8) return undefined;
    let v = 0;
    for (let i = 0; i < n; i++, bit++) v = (v << 1) | ((asc[bit >> 3]! >> (7 - (bit & 7))) & 1);
    return v;
  };
  const objectType = read(5);
  if (objectType === undefined) return undefined;
  if (objectType === 31 && read(6) === undefined) return undefined;
  const frequencyIndex = read(4);
  if (frequencyIndex === undefined) return undefined;
  if (frequencyIndex === 15 && read(24) === undefined) return undefined;
  const config = read(4);
  if (config === undefined || config === 0) return undefined;
  // 1-6: that many channels (5 = 5.0, 6 = 5.1); 7: 7.1 (8 channels); 8-15: reserved or rare layouts
  if (config <= 6) return config;
  if (config === 7) return 8;
  return undefined;
}

/** Channels from an FLV audio tag holding an AAC sequence header (as node-media-server keeps it); else undefined. */
export function aacChannelsOfFlvTag(tag: Uint8Array | null | undefined): number | undefined {
  if (!tag || tag.length < FLV_TAG_HEADER + 3) return undefined;
  const body = tag.subarray(FLV_TAG_HEADER);
  if (body[0]! >> 4 !== FLV_SOUND_FORMAT_AAC || body[1] !== 0) return undefined; // not AAC, or not the sequence header
  return aacConfigChannels(body.subarray(2));
}
