/**
 * Text a user typed (a prompt, a chat message, text to tokenize) is never refused for a character
 * the model cannot encode: a model made before byte fallback (or the counting model's word
 * vocabulary) leaves such a piece out, and one warning line names what was left out.
 */
import { describeChar, type EncodeOptions, type Tokenizer } from "../index.js";

/** the warning for pieces of the user's text the model's vocabulary cannot encode */
export function droppedWarning(tokenizer: Tokenizer, pieces: readonly string[]): string {
  const names = pieces.map((p) => (tokenizer.kind === "char" ? describeChar(p) : JSON.stringify(p))).join(", ");
  const why =
    tokenizer.kind === "char"
      ? "not in this model's character vocabulary (it was made before byte fallback)"
      : `not in this model's ${tokenizer.kind} vocabulary`;
  return `warning: left out ${names}: ${why}`;
}

/** `tokenizer.encode`, leaving out what it cannot encode with one warning line (on stderr unless `warn` takes it) */
export function encodeUserText(
  tokenizer: Tokenizer,
  text: string,
  options: EncodeOptions = {},
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): number[] {
  const dropped: string[] = [];
  const ids = tokenizer.encode(text, {
    ...options,
    onUnknown: (p) => {
      if (!dropped.includes(p)) dropped.push(p);
    },
  });
  if (dropped.length > 0) warn(droppedWarning(tokenizer, dropped));
  return ids;
}
