// Small DOM helpers shared by the views.

/** the element with this id (the page's HTML has it; a missing one is a bug in index.html) */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
}

export const inputNumber = (id: string): number => Number(byId<HTMLInputElement>(id).value);

/**
 * The number in input #id for a click to act on: a number (a whole one when `whole`) within the
 * input's min and max, else null with the message line naming the field and what it takes. An empty
 * field or a temperature of -1 would otherwise go through as 0 or -1 without a word.
 */
export function checkedNumber(id: string, whole: boolean): number | null {
  const input = byId<HTMLInputElement>(id);
  const value = input.value.trim() === "" ? Number.NaN : Number(input.value);
  const min = input.min === "" ? null : Number(input.min);
  const max = input.max === "" ? null : Number(input.max);
  if (Number.isFinite(value) && (!whole || Number.isInteger(value)) && (min === null || value >= min) && (max === null || value <= max))
    return value;
  const name = (input.closest("label")?.textContent ?? id).trim();
  const range =
    min !== null && max !== null ? `from ${min} to ${max}` : min !== null ? `of ${min} or more` : max !== null ? `up to ${max}` : "";
  const got = input.value.trim() === "" ? "it is empty" : `not ${JSON.stringify(input.value)}`;
  showMessage(`${name}: give a ${whole ? "whole number" : "number"}${range ? ` ${range}` : ""} (${got})`);
  input.focus();
  return null;
}

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

/**
 * Updates gathered and drawn once an animation frame, however fast they come: a small model streams
 * thousands of tokens a second, and a layout for each would keep the page's thread from Stop's click
 * and make a long generation stutter.
 */
export class PerFrame<T> {
  private waiting: T[] = [];
  private frame = 0;

  constructor(private readonly draw: (items: T[]) => void) {}

  push(item: T): void {
    this.waiting.push(item);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** draw what waits now, before what must come after it (the end of a reply, a notice) */
  flush(): void {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    const items = this.waiting;
    this.waiting = [];
    if (items.length > 0) this.draw(items);
  }
}
