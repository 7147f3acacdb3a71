// Adds up the JSON reports of every test phase and prints one closing line: "N passed, N failed, N skipped".
// Exits non-zero when a phase wrote no report (it crashed before running) or nothing ran at all.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? ".test-results";
const expected = ["edge.json", "node.json", "ffmpeg.json"];
let passed = 0;
let failed = 0;
let skipped = 0;
let ok = true;
const present = new Set(readdirSync(dir));
for (const file of expected) {
  if (!present.has(file)) {
    console.error(`phase report ${file} is missing: that phase did not run to the end`);
    ok = false;
    continue;
  }
  const report = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
  };
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
}
if (passed + failed === 0) ok = false;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(ok && failed === 0 ? 0 : 1);
