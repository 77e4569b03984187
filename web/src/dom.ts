// Small DOM helpers shared by the views.

/** the element with this id (the page's HTML has it; a missing one is a bug in index.html) */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
}

export const inputNumber = (id: string): number => Number(byId<HTMLInputElement>(id).value);

/** the message line under the tabs: errors and notices, one at a time */
export function showMessage(text: string, kind: "error" | "notice" = "error"): void {
  const box = byId("message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
}

export function clearMessage(): void {
  byId("message").hidden = true;
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function formatBytesShort(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(0)} MiB`;
  return `${(n / 2 ** 10).toFixed(0)} KiB`;
}

export function formatDuration(s: number): string {
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** a token as shown in a box: spaces and newlines visible */
export const visible = (s: string): string => s.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "→");
