/**
 * Generated text on a terminal. A model can sample control characters (an undertrained one often
 * does), and a terminal obeys them: ESC begins escape sequences, SO switches the terminal to another
 * character set until it is reset, BS and DEL erase what was shown. On a terminal they are shown as
 * their Unicode control pictures instead (␛ ␎ ␈ ␡; C1 controls as \x9b); tab, newline and carriage
 * return stay what they are. Text written to a pipe or a file is the text as generated.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;

/** `text` with its control characters made visible (see above) */
export function visibleControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code); // ␀ .. ␟
    if (code === 0x7f) return "\u2421"; // ␡
    return `\\x${code.toString(16)}`;
  });
}

/** generated text as it should be written to stdout: made visible on a terminal, as it is otherwise */
export function forStdout(text: string): string {
  return process.stdout.isTTY ? visibleControls(text) : text;
}
