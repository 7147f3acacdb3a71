// Every settings declaration the README documents, by README section (`<!-- settings:NAME -->`). The test
// (readme-settings.test.ts) holds each section equal to `settingsTable(spec)`; `npm run docs:settings` rewrites
// them. Documenting another runtime's settings is one more entry here plus its marked section in the README.

import type { SettingsSpec } from "../../shared/settings/settings.ts";
import { nodeSettingsSections } from "../../media-node/src/settings/index.ts";
import { videoSettings } from "../../edge/src/videos/settings.ts";

export interface SettingsSection {
  /** README section name: the table sits between `<!-- settings:NAME -->` and `<!-- /settings:NAME -->` */
  section: string;
  spec: SettingsSpec;
}

export const settingsRegistry: SettingsSection[] = [...nodeSettingsSections, { section: "edge-videos", spec: videoSettings }];
