import * as m3u8 from "m3u8-parser";

// Node loads m3u8-parser's CommonJS build (its exports under `default`), workerd its ES build (named exports).
const Parser = (m3u8 as unknown as { Parser?: typeof m3u8.Parser }).Parser ?? m3u8.default.Parser;

/**
 * Reads an HLS playlist with m3u8-parser: an independent reader of what the media node writes, so tests do not
 * check our playlist writer with our own parser.
 */
export function parsePlaylist(text: string) {
  const parser = new Parser();
  parser.push(text);
  parser.end();
  return parser.manifest;
}
