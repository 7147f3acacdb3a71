// Tells the Workers types what this Worker's env and main module are, so `env` from "cloudflare:workers"
// / "cloudflare:test" and `exports.default` are typed in code and in tests.
// (An interface cannot extend an `import(...)` type expression directly — TS2499 — hence the alias.)
type PulsecastWorkerEnv = import("./env.ts").Env;
type PulsecastMainModule = typeof import("./index.ts");

declare namespace Cloudflare {
  interface Env extends PulsecastWorkerEnv {}
  interface GlobalProps {
    mainModule: PulsecastMainModule;
  }
}
