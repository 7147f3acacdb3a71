// Settings of the signed event ingress. Read from the Worker env (a wrangler var, `--var` in tests) when set,
// else the default here. A value that does not parse as a positive integer falls back to the default.
// The secret itself is EDGE_INGRESS_SECRET (env.ts): one or several, comma/space separated, for rotation.

import { DEFAULT_TOLERANCE_S } from "../../../shared/signing/webhooks.ts";

export interface IngressConfig {
  /**
   * EDGE_INGRESS_TOLERANCE_S (default 300, the Standard Webhooks recommendation): how far webhook-timestamp may
   * be from the edge's clock, either way, in seconds. With the objects' dedup ledgers (kept 7 days, as long as
   * JetStream keeps events) this is the replay protection: an older replay is refused, a newer one is a no-op.
   */
  toleranceS: number;
}

export interface IngressVars {
  EDGE_INGRESS_TOLERANCE_S?: string;
}

export function ingressConfig(env: IngressVars): IngressConfig {
  const n = Number(env.EDGE_INGRESS_TOLERANCE_S);
  return { toleranceS: env.EDGE_INGRESS_TOLERANCE_S && Number.isInteger(n) && n > 0 ? n : DEFAULT_TOLERANCE_S };
}
