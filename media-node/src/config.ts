// The media node's own settings group; declared in settings/media.ts, read with the other groups by
// settings/processes.ts (readMediaNodeSettings). Kept as an entry point for the modules that use its types.
export { DEFAULT_LADDER, type MediaConfig, RUNG_NAMES, type RungName } from "./settings/media.ts";
export { ConfigError, loadConfig } from "./settings/processes.ts";
