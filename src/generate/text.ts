/**
 * Generation as text: token ids streamed through TextStreamer, ended by a stop string the way
 * Hugging Face's `stop_strings` and OpenAI's `stop` end it: the text stops where the string first
 * appears, and the string itself is not part of the output (unless asked for).
 */
import type { GPT } from "../nn/gpt.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type DecodedToken, type GenerateOptions, streamTokens, streamTokensAsync, type TokenSink } from "./generate.js";
import { TextStreamer } from "./stream.js";

/**
 * A stop string over streamed text. Text that could be the start of the stop string is held back
 * until a later piece shows whether it is, so nothing shown ever has to be taken back.
 */
export class StopString {
  private pending = "";
  /** the stop string has appeared: nothing more is shown */
  stopped = false;

  /** include: keep the stop string at the end of the text */
  constructor(
    readonly stop: string,
    readonly include = false,
  ) {}

  /** the part of `text` (after what came before) that can be shown now */
  push(text: string): string {
    if (this.stopped) return "";
    this.pending += text;
    const at = this.stop === "" ? -1 : this.pending.indexOf(this.stop);
    if (at >= 0) {
      this.stopped = true;
      return this.pending.slice(0, at + (this.include ? this.stop.length : 0));
    }
    // hold back the longest end of the text that begins the stop string (it never starts inside
    // a surrogate pair: a well-formed stop string does not begin with a low surrogate)
    let hold = Math.min(this.stop.length - 1, this.pending.length);
    while (hold > 0 && !this.stop.startsWith(this.pending.slice(this.pending.length - hold))) hold--;
    const shown = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return shown;
  }

  /** at the end of a generation without the stop string: the text held back */
  finish(): string {
    if (this.stopped) return "";
    const rest = this.pending;
    this.pending = "";
    return rest;
  }
}

export interface GenerateTextOptions extends GenerateOptions {
  /** end the text where this string first appears ("" = none); special tokens such as <|end|> work too */
  stop: string;
  /** keep the stop string at the end of the text (default: left out) */
  includeStop: boolean;
}

/**
 * Sample after `prompt` and yield the new text piece by piece as it becomes printable (see
 * TextStreamer), ended by options.stop when it appears.
 */
export function* generateText(
  model: GPT,
  tokenizer: Tokenizer,
  prompt: readonly number[],
  options: Partial<GenerateTextOptions> = {},
): Generator<string> {
  const { sampling, pieces } = textPieces(tokenizer, prompt, options);
  yield* streamTokens(model, prompt, sampling, pieces);
}

/** generateText on any backend, the GPU's included (see streamTokensAsync) */
export async function* generateTextAsync(
  model: GPT,
  tokenizer: Tokenizer,
  prompt: readonly number[],
  options: Partial<GenerateTextOptions> = {},
): AsyncGenerator<string> {
  const { sampling, pieces } = textPieces(tokenizer, prompt, options);
  yield* streamTokensAsync(model, prompt, sampling, pieces);
}

/** the options of the token stream, and the sink that turns its tokens into text ended by the stop string */
function textPieces(tokenizer: Tokenizer, prompt: readonly number[], options: Partial<GenerateTextOptions>) {
  const { stop = "", includeStop = false, ...sampling } = options;
  return { sampling, pieces: new TextPieces(tokenizer, prompt, new StopString(stop, includeStop)) };
}

/** generated ids -> the text that can be shown after each: TextStreamer, then the stop string */
class TextPieces implements TokenSink<string> {
  private readonly streamer: TextStreamer;

  constructor(
    tokenizer: Tokenizer,
    prompt: readonly number[],
    private readonly filter: StopString,
  ) {
    this.streamer = new TextStreamer(tokenizer, prompt);
  }

  get stopped(): boolean {
    return this.filter.stopped;
  }

  push(token: DecodedToken): string[] {
    return nonEmpty(this.filter.push(this.streamer.push(token.id)));
  }

  /** what is left at the end */
  end(): string[] {
    return nonEmpty(this.filter.push(this.streamer.finish()) + this.filter.finish());
  }
}

function nonEmpty(piece: string): string[] {
  return piece ? [piece] : [];
}
