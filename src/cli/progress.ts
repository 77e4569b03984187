/** The live progress line of `train` and friends: redrawn in place on a terminal, a log line otherwise. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function bar(fraction: number, width = 20): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.floor(f * width);
  const parts = " ▏▎▍▌▋▊▉";
  const rest = Math.floor((f * width - full) * 8);
  return `${"█".repeat(full)}${full < width ? parts[rest] : ""}${" ".repeat(Math.max(0, width - full - 1))}`;
}

export class ProgressLine {
  private readonly tty: boolean;
  private lastLength = 0;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY);
  }
  /** redraw (terminal) or, when `log` is true, print as a permanent line */
  update(text: string, log: boolean): void {
    if (this.tty) {
      this.stream.write(`\r${text.padEnd(this.lastLength)}`);
      this.lastLength = text.length;
      if (log) {
        this.stream.write("\n");
        this.lastLength = 0;
      }
    } else if (log) {
      this.stream.write(`${text}\n`);
    }
  }
  /** end the in-place line before printing something else */
  break(): void {
    if (this.tty && this.lastLength > 0) {
      this.stream.write("\n");
      this.lastLength = 0;
    }
  }
}

/** One pass of tokenizing a big text into the token cache: MB read, MB/s, tokens so far, ETA. */
export function tokenizeProgressLine(p: { pass: string; bytesRead: number; totalBytes: number; tokens: number; seconds: number }): string {
  const mb = (b: number) => (b / 1e6).toFixed(b < 1e8 ? 1 : 0);
  const rate = p.bytesRead / 1e6 / Math.max(p.seconds, 1e-3);
  const eta = formatDuration((p.totalBytes - p.bytesRead) / 1e6 / Math.max(rate, 1e-9));
  const tokens = p.pass === "tokens" ? ` ${p.tokens.toLocaleString("en-US")} tokens` : "";
  return `tokenizing (${p.pass} pass) ${bar(p.bytesRead / Math.max(1, p.totalBytes))} ${mb(p.bytesRead)}/${mb(p.totalBytes)} MB ${rate.toFixed(1)} MB/s${tokens} ETA ${eta}`;
}
