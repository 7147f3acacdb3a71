import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeEvent } from "../../../../shared/envelope.ts";
import { OutboxLog } from "./outbox-log.ts";

const event = (n: number) =>
  makeEvent("media.progress", { mediaId: `m${n}`, stage: "transcode", percent: n % 100 }, { source: "media-node/test", subject: `media/m${n}` });

describe("outbox log (on disk)", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pulsecast-outbox-log-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps appended events across a reopen, in order, from the cursor on", async () => {
    const events = [1, 2, 3, 4].map(event);
    let { log } = await OutboxLog.open(dir);
    const ends = await log.append(events.map((e) => JSON.stringify(e)));
    await log.setCursor(ends[1]!); // the first two confirmed
    await log.close();

    const reopened = await OutboxLog.open(dir);
    expect(reopened.pending.map((p) => p.event.id)).toEqual([events[2]!.id, events[3]!.id]);
    expect(reopened.pending.at(-1)!.end).toBe(reopened.log.size);
    await reopened.log.close();
  });

  it("cuts a partial last line left by a crash mid-append, and appends cleanly after it", async () => {
    const [a, b] = [event(1), event(2)];
    await writeFile(join(dir, "events.jsonl"), JSON.stringify(a) + "\n" + JSON.stringify(b).slice(0, 20));
    const { log, pending } = await OutboxLog.open(dir);
    expect(pending.map((p) => p.event.id)).toEqual([a.id]);
    await log.append([JSON.stringify(b)]);
    await log.close();
    const text = await readFile(join(dir, "events.jsonl"), "utf8");
    expect(text).toBe(JSON.stringify(a) + "\n" + JSON.stringify(b) + "\n");
  });

  it("moves lines that are not valid events aside instead of publishing them, keeping the valid ones", async () => {
    const good = event(1);
    await writeFile(join(dir, "events.jsonl"), `{"not":"an event"}\n${JSON.stringify(good)}\nnot json\n`);
    const { log, pending, rejected } = await OutboxLog.open(dir);
    expect(rejected).toBe(2);
    expect(pending.map((p) => p.event.id)).toEqual([good.id]);
    expect(await readFile(join(dir, "rejected.jsonl"), "utf8")).toContain('{"not":"an event"}');
    await log.close();
  });

  it("republishes everything when the cursor does not fit the file (a repeat is absorbed downstream, a loss is not)", async () => {
    const events = [1, 2].map(event);
    await writeFile(join(dir, "events.jsonl"), events.map((e) => JSON.stringify(e) + "\n").join(""));
    await writeFile(join(dir, "cursor"), "7"); // not at a line boundary
    const { log, pending } = await OutboxLog.open(dir);
    expect(pending).toHaveLength(2);
    await log.close();
  });

  it("truncates the file once every event is confirmed", async () => {
    const { log } = await OutboxLog.open(dir);
    const ends = await log.append([JSON.stringify(event(1))]);
    await log.compact(); // not confirmed yet: nothing happens
    expect(log.size).toBe(ends[0]);
    await log.setCursor(ends[0]!);
    await log.compact();
    expect(log.size).toBe(0);
    expect(await readFile(join(dir, "events.jsonl"), "utf8")).toBe("");
    await log.close();
  });

  it("writes the cursor off the publishing path: the latest value lands, and close writes the last one", async () => {
    const { log } = await OutboxLog.open(dir);
    const ends = await log.append([1, 2, 3, 4, 5].map((n) => JSON.stringify(event(n))));
    const cursorOnDisk = async () => Number(await readFile(join(dir, "cursor"), "utf8"));
    // Confirmations in a row, as the pump makes them: the writes collapse, and the last value is the one on disk.
    let written: Promise<void> = Promise.resolve();
    for (const end of ends.slice(0, 3)) {
      log.cursor = end;
      written = log.persistCursor();
    }
    await written;
    expect(await cursorOnDisk()).toBe(ends[2]);
    // One more, left to its interval: close writes it rather than dropping it.
    log.cursor = ends[3]!;
    void log.persistCursor();
    await log.close();
    expect(await cursorOnDisk()).toBe(ends[3]);
    const reopened = await OutboxLog.open(dir);
    expect(reopened.pending.map((p) => p.end)).toEqual([ends[4]]);
    await reopened.log.close();
  });

  it("refuses a second process on the same directory while the first is alive", async () => {
    const { log } = await OutboxLog.open(dir);
    // Pretend another live process holds the lock: our parent is alive.
    await writeFile(join(dir, "lock"), String(process.ppid));
    await expect(OutboxLog.open(dir)).rejects.toThrow(/in use by process/);
    // A lock left by a dead process is taken over.
    await writeFile(join(dir, "lock"), "999999999");
    const second = await OutboxLog.open(dir);
    await second.log.close();
    await log.close();
  });
});
