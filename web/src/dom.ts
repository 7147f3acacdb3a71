// Small DOM helpers for the pages: no framework, text always set as text (never HTML), so chat and names
// from other users cannot inject markup.

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

type Attrs = Record<string, string | number | boolean | undefined>;

/** Creates an element with attributes and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string | null | undefined | false)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") el.className = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

/** Shows an error (or notice) in words in the page's alert region; `key` replaces an earlier one of the same kind. */
export function showAlert(text: string, opts: { key?: string; kind?: "error" | "info" } = {}): void {
  const region = $("alerts");
  const key = opts.key ?? text;
  region.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
  const close = h("button", { type: "button", class: "link", "aria-label": "Dismiss" }, "×");
  const item = h("p", { class: `alert ${opts.kind ?? "error"}`, "data-key": key }, h("span", {}, text), close);
  close.addEventListener("click", () => item.remove());
  region.append(item);
}

export function clearAlert(key: string): void {
  document.querySelector(`#alerts [data-key="${CSS.escape(key)}"]`)?.remove();
}

export function formatTime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00";
  const s = Math.floor(seconds % 60);
  const m = Math.floor(seconds / 60) % 60;
  const hr = Math.floor(seconds / 3600);
  return `${hr > 0 ? `${hr}:${String(m).padStart(2, "0")}` : m}:${String(s).padStart(2, "0")}`;
}
