/**
 * The library's messages in the CLI's words: a setting it names (a TrainConfig key such as minLr, or a
 * train() option such as overwrite; src/wording.ts) is named by its flag (--min-lr, --overwrite).
 */
import { flagName, type Message, MinigptError } from "../index.js";

/** a message with each setting it names written as its flag */
export function inFlags(message: Message): string {
  return typeof message === "string" ? message : message.words((name) => `--${flagName(name)}`);
}

/**
 * an error's message in the CLI's words, on one line: a message may quote what the user gave (a
 * JSON parser quotes the start of a broken file, newlines, control bytes and all), and a terminal
 * line or a log must not break or be garbled by it
 */
export function errorText(err: Error): string {
  const text = err instanceof MinigptError && err.said ? inFlags(err.said) : err.message;
  return text.replace(/\s*[\r\n]+\s*/g, " ").replace(/\p{Cc}/gu, "?");
}
