import m3u8Parser from "m3u8-parser";

/**
 * Reads an HLS playlist with m3u8-parser: an independent reader of what the media node writes, so tests do not
 * check our playlist writer with our own parser.
 */
export function parsePlaylist(text: string) {
  const parser = new m3u8Parser.Parser();
  parser.push(text);
  parser.end();
  return parser.manifest;
}
