// Adds up the JSON reports of every test phase and prints one closing line: "N passed, N failed, N skipped".
// Exits non-zero when a phase wrote no report (it crashed before running), nothing ran at all, a test failed,
// a test file failed on its own (an import error, a hook that threw), or anything was skipped: the suite has
// no intentional skips, and vitest marks every test of a file whose `beforeAll` threw as skipped, so a skip
// means a harness (wrangler dev, nats-server, a media fixture) crashed.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numFailedTestSuites: number;
  testResults: { name: string; status: string; message?: string }[];
}

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
  const report = JSON.parse(readFileSync(join(dir, file), "utf8")) as Report;
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  for (const suite of report.testResults ?? []) {
    if (suite.status === "failed" && suite.message) console.error(`test file failed on its own: ${suite.name}: ${suite.message.split("\n")[0]}`);
  }
  if (report.numFailedTestSuites > 0) ok = false;
}
if (passed + failed === 0) ok = false;
if (skipped > 0) {
  console.error(`${skipped} test(s) skipped: nothing is skipped on purpose here, so a harness crashed (see above)`);
  ok = false;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(ok && failed === 0 ? 0 : 1);
