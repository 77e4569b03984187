import { createInterface, type Interface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import {
  type ChatOptions,
  ChatSession,
  loadModelFolder,
  MinigptError,
  neverLearnedToEndReplies,
  type Tokenizer,
  unseenSpecialIds,
} from "../index.js";
import { deviceBackendFlags, modelFlag, samplingFlags } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { streamUntil } from "./interrupt.js";
import { forStdout } from "./terminal-text.js";
import { droppedWarning } from "./user-text.js";
import { errorText } from "./wording.js";

export const chatSpec: CommandSpec = {
  name: "chat",
  summary: "talk to a chat-fine-tuned model (<|user|> ... <|end|><|assistant|> ... <|end|>), replies streamed",
  usage: 'minigpt chat --model DIR [--system "..."] [--temperature x] [--top-k n] [--top-p x] [--max-new-tokens n]',
  flags: [
    modelFlag("model folder with the chat tokens (see minigpt train --chat)"),
    {
      name: "system",
      type: "string",
      default: "",
      help: 'a system message at the start of every prompt, as in the "system" messages of the chat data (/reset keeps it)',
    },
    ...samplingFlags,
    ...deviceBackendFlags,
  ],
  examples: ["minigpt chat --model chat-model", 'printf "hi\\nwhat is your name?\\n" | minigpt chat --model chat-model --temperature 0'],
};

/**
 * The user's side of a session: lines from a stream, one at a time, with a prompt, and Ctrl-C.
 * On a terminal the prompt is shown and the user types; when input is piped (a script), the prompt
 * and the line read are echoed so the output reads as a transcript. next() returns null at the end
 * of input.
 *
 * Ctrl-C (SIGINT, when reading process.stdin) during a reply run through stream() stops the reply
 * at its next token and the loop goes back to the prompt; Ctrl-C anywhere else (at the prompt, so
 * a second Ctrl-C after a stopped reply) quits: next() returns null, as at the end of input, and
 * the session ends the way /quit ends it.
 */
export class LineReader {
  private readonly rl: Interface;
  private readonly it: AsyncIterator<string>;
  readonly tty: boolean;
  private replying = false;
  private stopReply = false;
  private quit = false;
  /** wakes a next() waiting for a line when Ctrl-C asks to quit */
  private wake: (() => void) | null = null;
  private readonly onSigint = () => {
    if (this.replying) this.stopReply = true;
    else {
      this.quit = true;
      this.wake?.();
    }
  };
  private readonly signals: boolean;
  constructor(
    input: Readable = process.stdin,
    private readonly output: Writable = process.stdout,
  ) {
    this.tty = Boolean((input as { isTTY?: boolean }).isTTY);
    this.rl = createInterface({ input, terminal: false, crlfDelay: Number.POSITIVE_INFINITY });
    this.it = this.rl[Symbol.asyncIterator]();
    this.signals = input === process.stdin;
    if (this.signals) process.on("SIGINT", this.onSigint);
  }
  async next(prompt: string): Promise<string | null> {
    if (this.quit) return null;
    this.output.write(prompt);
    const quitting = new Promise<null>((resolve) => {
      this.wake = () => resolve(null);
    });
    const r = await Promise.race([this.it.next(), quitting]);
    this.wake = null;
    if (r === null || r.done) {
      this.output.write("\n");
      return null;
    }
    const line = (r.value as string).replace(/\r$/, "");
    if (!this.tty) this.output.write(`${line}\n`);
    return line;
  }
  /**
   * Run a reply: `each` gets every item of `items` (a generator that streams tokens) until it ends
   * or Ctrl-C stops it; "stopped" then, and the generator is closed. The event loop turns between
   * items, which is what lets the signal in while the model computes.
   */
  async stream<T>(items: Iterable<T> | AsyncIterable<T>, each: (item: T) => void): Promise<"done" | "stopped"> {
    this.replying = true;
    this.stopReply = false;
    try {
      return await streamUntil(items, each, () => this.stopReply);
    } finally {
      this.replying = false;
    }
  }
  close(): void {
    if (this.signals) process.off("SIGINT", this.onSigint);
    this.rl.close();
  }
}

/** What a reply stopped by Ctrl-C ends with. */
export const STOPPED = " [stopped by Ctrl-C; Ctrl-C at the prompt quits]";

const SETTINGS_HELP = [
  "/temp X    temperature (0 = always the most likely token)",
  "/topk N    sample among the N most likely tokens (0 = off)",
  "/topp X    sample among the most likely tokens covering probability X (1 = off)",
  "/max N     tokens per reply",
  "/seed N    random seed",
  "/reset     forget the conversation (or the text so far)",
  "/help      this list",
  "/quit      leave",
];

type SlashResult = { kind: "quit" } | { kind: "reset" } | { kind: "message"; text: string } | { kind: "none" };

/** Apply a /command to the sampling options; never throws, whatever the input. */
export function slashCommand(line: string, o: ChatOptions): SlashResult {
  const [cmd = "", arg = "", ...extra] = line.trim().split(/\s+/);
  const num = (): number | undefined => {
    if (arg === "" || extra.length > 0) return undefined;
    const v = Number(arg);
    return Number.isFinite(v) ? v : undefined;
  };
  const show = () => `temperature ${o.temperature}, top-k ${o.topK}, top-p ${o.topP}, max ${o.maxNewTokens} tokens, seed ${o.seed}`;
  switch (cmd.toLowerCase()) {
    case "/quit":
    case "/exit":
    case "/q":
      return { kind: "quit" };
    case "/reset":
      return { kind: "reset" };
    case "/help":
    case "/?":
      return { kind: "message", text: `${SETTINGS_HELP.join("\n")}\nnow: ${show()}` };
    case "/settings":
      return { kind: "message", text: show() };
    case "/temp": {
      const v = num();
      if (v === undefined || v < 0 || v > 100)
        return { kind: "message", text: "usage: /temp X with X a number from 0 to 100, e.g. /temp 0.8" };
      o.temperature = v;
      return { kind: "message", text: `temperature ${v}` };
    }
    case "/topk": {
      const v = num();
      if (v === undefined || !Number.isInteger(v) || v < 0)
        return { kind: "message", text: "usage: /topk N with N a whole number >= 0, e.g. /topk 40" };
      o.topK = v;
      return { kind: "message", text: `top-k ${v}${v === 0 ? " (off)" : ""}` };
    }
    case "/topp": {
      const v = num();
      if (v === undefined || !(v > 0 && v <= 1)) return { kind: "message", text: "usage: /topp X with 0 < X <= 1, e.g. /topp 0.9" };
      o.topP = v;
      return { kind: "message", text: `top-p ${v}${v === 1 ? " (off)" : ""}` };
    }
    case "/max": {
      const v = num();
      if (v === undefined || !Number.isInteger(v) || v < 1 || v > 100000)
        return { kind: "message", text: "usage: /max N with N a whole number from 1 to 100000, e.g. /max 200" };
      o.maxNewTokens = v;
      return { kind: "message", text: `max ${v} tokens` };
    }
    case "/seed": {
      const v = num();
      if (v === undefined || !Number.isInteger(v)) return { kind: "message", text: "usage: /seed N with N a whole number" };
      o.seed = v;
      return { kind: "message", text: `seed ${v}` };
    }
    default:
      return { kind: "message", text: `unknown command ${JSON.stringify(cmd)}; /help lists the commands` };
  }
}

/**
 * The chat loop over a line reader: returns at end of input, /quit, Ctrl-C at the prompt, or a line
 * for which `leave` (the caller's own commands) says so. A reply stopped by Ctrl-C is not kept in
 * the conversation: the next message is sent as if it had not been asked.
 */
export async function chatLoop(
  session: ChatSession,
  reader: LineReader,
  write: (s: string) => void,
  leave: (line: string) => boolean = () => false,
): Promise<void> {
  for (;;) {
    const line = await reader.next("you> ");
    if (line === null || leave(line)) return;
    if (line.trim() === "") continue;
    if (line.trim().startsWith("/")) {
      const r = slashCommand(line, session.options);
      if (r.kind === "quit") return;
      if (r.kind === "reset") {
        session.reset();
        write("(conversation cleared)\n");
      } else if (r.kind === "message") write(`${r.text}\n`);
      continue;
    }
    try {
      let started = false;
      const start = () => {
        if (!started) write("assistant> ");
        started = true;
      };
      const ended = await reader.stream(session.sendAsync(line), (e) => {
        if (e.type === "unknown") write(`(${droppedWarning(session.tokenizer, e.pieces)})\n`);
        else if (e.type === "dropped") {
          write(
            `(dropped the oldest ${e.turns === 1 ? "turn" : `${e.turns} turns`} to stay within the ${e.contextTokens}-token context)\n`,
          );
        } else if (e.type === "text") {
          start();
          write(forStdout(e.text));
        } else {
          start();
          if (e.stoppedBy === "length") write(` [${replyCutNote(e.tokens, session.model.config.blockSize)}]`);
        }
      });
      if (ended === "stopped") write(`${STOPPED} (this exchange is not kept)`);
      write("\n");
    } catch (err) {
      if (!(err instanceof MinigptError)) throw err;
      write(`\n(${errorText(err)})\n`);
    }
  }
}

/**
 * What a reply cut by the token limit (/max, --max-new-tokens) ends with. A reply longer than the
 * model's context is written with the context sliding over it, so its end was written without the
 * user's message in view: said, since "cut at 200 tokens" from a 64-token model otherwise puzzles.
 */
function replyCutNote(tokens: number, contextTokens: number): string {
  if (tokens <= contextTokens) return `reply cut at ${tokens} tokens: /max raises the limit`;
  return `reply cut at ${tokens} tokens, the /max limit: longer than the model's ${contextTokens}-token context, so it lost sight of your message on the way; /max N changes the limit`;
}

/**
 * The note for a model whose vocabulary has the chat tokens but that never learned to end a reply
 * (no <|end|> among the tokens it was trained to predict): it answers with noise until the token
 * limit, so say why before the user wonders. null for a chat-fine-tuned model, or a folder that does
 * not record what it was trained on.
 */
export function notFineTunedForChat(info: Record<string, unknown>, tokenizer: Tokenizer, dir: string): string | null {
  if (!neverLearnedToEndReplies(info, tokenizer)) return null;
  return `note: ${dir} was not fine-tuned for chat (it never learned to end a reply with <|end|>), so its replies will ramble; fine-tune it with: minigpt train --chat conversations.jsonl --init ${dir} --out ${dir}-chat`;
}

export async function runChat(argv: readonly string[]): Promise<number> {
  const f = parseFlags(chatSpec, argv);
  const dir = f.string("model");
  const folder = loadModelFolder(dir, undefined, "decode");
  const { model, tokenizer } = folder;
  try {
    const session = new ChatSession(
      model,
      tokenizer,
      {
        maxNewTokens: f.int("max-new-tokens"),
        temperature: f.float("temperature"),
        topK: f.int("top-k"),
        topP: f.float("top-p"),
        seed: f.int("seed"),
        suppressIds: unseenSpecialIds(folder),
      },
      dir,
    );
    session.setSystem(f.string("system"));
    const write = (s: string) => process.stdout.write(s);
    const note = notFineTunedForChat(folder.info, tokenizer, dir);
    if (note) process.stderr.write(`${note}\n`);
    write(
      `minigpt chat with ${dir} (${model.config.blockSize}-token context; older turns are dropped when it fills). /help for commands; Ctrl-C stops a reply; /quit, Ctrl-D or Ctrl-C at the prompt leaves.\n`,
    );
    const reader = new LineReader();
    try {
      await chatLoop(session, reader, write);
    } finally {
      reader.close();
    }
    return 0;
  } finally {
    model.dispose();
  }
}
