// Links that reach users (playback, VOD, notification links, avatars) are only ever web URLs: `https:`, and
// `http:` where a process allows it for local runs. Anything else (`javascript:`, `data:`, `file:`, relative
// paths) is refused at every boundary: the event schemas take only http/https, and each process narrows that
// to https unless its settings allow http (edge: ALLOW_HTTP_URLS).
import { z } from "zod";

/** Longest link accepted anywhere. */
export const MAX_URL_CHARS = 2048;

/** What is wrong with `value` as a link for users, or null when it is fine. */
export function webUrlProblem(value: string, opts: { allowHttp: boolean } = { allowHttp: true }): string | null {
  if (value.length > MAX_URL_CHARS) return `longer than ${MAX_URL_CHARS} characters`;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return "not an absolute URL";
  }
  if (parsed.protocol === "https:") return null;
  if (parsed.protocol === "http:") return opts.allowHttp ? null : "must use https: (http: is allowed only where the settings say so)";
  return `protocol '${parsed.protocol}' is not allowed; use https:`;
}

/** zod schema of a user-facing link: an absolute http: or https: URL (callers narrow to https: by policy). */
export const webUrl = z.string().superRefine((value, ctx) => {
  const problem = webUrlProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: `not a web URL: ${problem}` });
});

/** The link fields of an event's data (by the schemas' naming rule: `url` or a name ending in `Url`), with their values. */
export function urlFieldsOf(data: unknown): [string, string][] {
  if (data === null || typeof data !== "object") return [];
  return Object.entries(data as Record<string, unknown>).filter((e): e is [string, string] => (e[0] === "url" || e[0].endsWith("Url")) && typeof e[1] === "string");
}

/** Every link of an event's data that the policy refuses, as `field: problem`. */
export function urlPolicyProblems(data: unknown, opts: { allowHttp: boolean }): string[] {
  return urlFieldsOf(data).flatMap(([field, value]) => {
    const problem = webUrlProblem(value, opts);
    return problem ? [`${field}: ${problem}`] : [];
  });
}
