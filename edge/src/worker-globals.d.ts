// Tells the Workers types what this Worker's env and main module are, so `env` from "cloudflare:workers"
// / "cloudflare:test" and `exports.default` are typed in code and in tests.
declare namespace Cloudflare {
  interface Env extends import("./env.ts").Env {}
  interface GlobalProps {
    mainModule: typeof import("./index.ts");
  }
}
