// Moved to settings/env.ts; re-exported for the local start script and older imports.
export { DEV_VARS_PATH, isDevRun, parseDevVars, readDevVars, type SettingsEnv, settingsEnv } from "./settings/env.ts";
export { shownValue } from "../../shared/settings/settings.ts";
