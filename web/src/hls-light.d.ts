// hls.js publishes its light build (no subtitles, alternate audio or DRM: this player needs none of them) without
// its own type declarations; its API is the full build's.
declare module "hls.js/light" {
  export * from "hls.js";
  export { default } from "hls.js";
}
