// Is a NATS server there? A TCP connect that waits for the server's greeting (`INFO {...}`), which every NATS
// server sends first. Cheap, needs no credentials, and does not disturb the bus's own connection.
// (The bus's MediaEventBus has no ping of its own; see the report to its owner.)

import { connect } from "node:net";

/** Resolves when any server of the (comma-separated) NATS URL list greets; rejects with every failure otherwise. */
export async function probeNats(urls: string, timeoutMs = 2000): Promise<void> {
  const targets = urls.split(",").map((u) => new URL(u.trim()));
  const errors: string[] = [];
  for (const url of targets) {
    try {
      await greet(url.hostname, Number(url.port || 4222), timeoutMs);
      return;
    } catch (error) {
      errors.push(`${url.host}: ${(error as Error).message}`);
    }
  }
  throw new Error(`NATS not reachable (${errors.join("; ")})`);
}

function greet(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buffered = "";
    const timer = setTimeout(() => done(new Error(`no INFO within ${timeoutMs} ms`)), timeoutMs);
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      if (buffered.startsWith("INFO ")) done();
      else if (buffered.length >= 5) done(new Error("not a NATS server (no INFO greeting)"));
    });
    socket.once("error", (e) => done(e));
    socket.once("close", () => done(new Error("closed before greeting")));
  });
}
