// m3u8-parser (used by tests to check our playlists with an independent parser) ships no typings.
// Only what the tests read is declared; the manifest stays loosely typed on purpose.
declare module "m3u8-parser" {
  export class Parser {
    push(chunk: string): void;
    end(): void;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    manifest: any;
  }
  const m3u8Parser: { Parser: typeof Parser };
  export default m3u8Parser;
}
