// Every settings declaration the README documents, by README section (`<!-- settings:NAME -->`). The test
// (readme-settings.test.ts) holds each section equal to `settingsTable(spec)`; `npm run docs:settings` rewrites
// them. Documenting another runtime's settings is one more entry here plus its marked section in the README.

import type { SettingsSpec } from "../../shared/settings/settings.ts";
import { EDGE_README_SECTION, EDGE_SETTINGS } from "../../edge/src/settings.ts";
import { nodeSettingsSections } from "../../media-node/src/settings/index.ts";

export interface SettingsSection {
  /** README section name: the table sits between `<!-- settings:NAME -->` and `<!-- /settings:NAME -->` */
  section: string;
  spec: SettingsSpec;
}

export const settingsRegistry: SettingsSection[] = [{ section: EDGE_README_SECTION, spec: EDGE_SETTINGS }, ...nodeSettingsSections];
