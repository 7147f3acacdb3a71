// The edge's policy for links in events (playbackUrl, vodUrl, a notification's url, ...): the event schemas
// already refuse anything but http/https; here `http:` is refused too unless ALLOW_HTTP_URLS is set (local runs).
import type { Envelope } from "../../../shared/envelope.ts";
import { urlPolicyProblems } from "../../../shared/urls.ts";
import type { EdgeSettings } from "../settings.ts";

/** Why the edge refuses this event's links, or null when they are all fine. */
export function linkProblem(event: Envelope, settings: Pick<EdgeSettings, "allowHttpUrls">): string | null {
  const problems = urlPolicyProblems(event.data, { allowHttp: settings.allowHttpUrls });
  return problems.length ? `${event.type} ${event.id}: ${problems.join("; ")}` : null;
}
