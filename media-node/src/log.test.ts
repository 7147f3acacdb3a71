import { describe, expect, it } from "vitest";
import { createLogger } from "./log.ts";

describe("structured logger", () => {
  it("writes one JSON object per line with level, message, child fields and serialised errors", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", sink: (line) => lines.push(line), fields: { service: "media-node" } });
    log.debug("hidden");
    log.child({ streamId: "s1" }).warn("publish refused", { reason: "token-expired", error: Object.assign(new Error("boom"), { code: "E1" }) });
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({ level: "warn", msg: "publish refused", service: "media-node", streamId: "s1", reason: "token-expired", error: { name: "Error", message: "boom", code: "E1" } });
    expect(new Date(record.time).getTime()).toBeGreaterThan(0);
  });
});
