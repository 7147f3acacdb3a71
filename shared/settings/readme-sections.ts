// The README's configuration tables are generated from the settings declarations. Each table sits between
// `<!-- settings:NAME -->` and `<!-- /settings:NAME -->`; these helpers read and replace such a section, so a
// test can compare it with the declarations and `npm run docs:settings` can rewrite it.

function markers(name: string): [string, string] {
  return [`<!-- settings:${name} -->`, `<!-- /settings:${name} -->`];
}

/** The text between a section's markers (trimmed), or undefined when the README has no such section. */
export function readSection(readme: string, name: string): string | undefined {
  const [open, close] = markers(name);
  const start = readme.indexOf(open);
  const end = readme.indexOf(close);
  if (start < 0 || end < start) return undefined;
  return readme.slice(start + open.length, end).trim();
}

/** The README with a section's content replaced; throws when the markers are missing. */
export function writeSection(readme: string, name: string, content: string): string {
  const [open, close] = markers(name);
  const start = readme.indexOf(open);
  const end = readme.indexOf(close);
  if (start < 0 || end < start) throw new Error(`README has no ${open} … ${close} section`);
  return readme.slice(0, start + open.length) + "\n" + content.trim() + "\n" + readme.slice(end);
}
