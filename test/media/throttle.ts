// Makes a process slower than real time on purpose, whatever the machine's load: an overloaded node's FFmpeg,
// reproduced by pausing the real one (SIGSTOP/SIGCONT).

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Holds `pid` to `speed` x real time, whatever the machine's load: every 100 ms it lets the process run only
 * while the media it has encoded (`encodedS()`) is behind `speed` x the wall time since the hold began.
 */
export function holdToSpeed(pid: number, speed: number, encodedS: () => number) {
  let on = true;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
      return true;
    } catch {
      return false; // gone
    }
  };
  const start = Date.now();
  const base = encodedS();
  const done = (async () => {
    while (on) {
      const ahead = encodedS() - base >= (speed * (Date.now() - start)) / 1000;
      if (!signal(ahead ? "SIGSTOP" : "SIGCONT")) return;
      await sleep(100); // a control period: the process's CPU share is what is being set here
    }
  })();
  return {
    async stop() {
      on = false;
      await done;
      signal("SIGCONT");
    },
  };
}

