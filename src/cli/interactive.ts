/**
 * `minigpt` with no arguments, or `minigpt interactive`: pick a model folder and a model (the best
 * one or a checkpoint), then a mode: generate (Enter continues the text), chat, or analyze.
 * /temp /topk /topp /max /seed change sampling, /reset starts over, /mode and /model go back,
 * /help lists everything, /quit leaves. Ctrl-C stops a reply and goes back to the prompt; at the
 * prompt it leaves. Reads lines, so it can be scripted through a pipe; bad input is answered, never
 * fatal.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  analyzeModel,
  type ChatOptions,
  ChatSession,
  chatTokenIds,
  checkpointNames,
  fail,
  failFs,
  formatAnalysis,
  type GPT,
  generateTokensAsync,
  hasLoraAdapter,
  hasTokenizer,
  loadModelFolder,
  MinigptError,
  type ModelFolder,
  readLoraConfig,
  setAsideFolder,
  startPrompt,
  TextStreamer,
  type Tokenizer,
  unseenSpecialIds,
} from "../index.js";
import { chatLoop, LineReader, notFineTunedForChat, STOPPED, slashCommand } from "./chat.js";
import { deviceBackendFlags } from "./common.js";
import { counted } from "./counted.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { forStdout } from "./terminal-text.js";
import { encodeUserText } from "./user-text.js";
import { errorText } from "./wording.js";

export const interactiveSpec: CommandSpec = {
  name: "interactive",
  summary: "menus: choose a model folder and a model, then generate, chat or analyze (also what `minigpt` alone does)",
  usage: "minigpt interactive [--dir DIR]     (or just: minigpt)",
  flags: [
    { name: "dir", type: "string", default: ".", help: "where to look for model folders (it, and the folders directly in it)" },
    ...deviceBackendFlags,
  ],
  examples: ["minigpt", 'printf "1\\n1\\nCall me\\n\\n/quit\\n" | minigpt interactive'],
};

interface ModelChoice {
  label: string;
  /** what loadModelFolder loads: the model folder, or one of its checkpoints */
  path: string;
}

/** a model folder with weights and a tokenizer, or a LoRA adapter (on a base model named in it) */
const isModelFolder = (d: string) =>
  (existsSync(join(d, "config.json")) && existsSync(join(d, "model.safetensors")) && hasTokenizer(d)) ||
  (hasLoraAdapter(d) && existsSync(join(d, "adapter_model.safetensors")));

/**
 * Model folders: `dir` itself and its direct subfolders (sorted). Not OUT.replaced-PID (the folder a
 * --overwrite run replaced, kept until that run finishes) nor OUT.partial-PID: each holds a model,
 * but a copy to restore or a run's unfinished start, not a model to pick; `note` says where a
 * replaced one is, so it is not lost from sight.
 */
function findModelFolders(dir: string, note: Write = () => {}): string[] {
  const found: string[] = [];
  if (isModelFolder(dir)) found.push(dir);
  let entries: string[] = [];
  try {
    entries = readdirSync(dir).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // not a folder (or none there): no model folders in it; anything else (EACCES, EIO) is said as such
    if (code !== "ENOENT" && code !== "ENOTDIR") failFs(`cannot read the folder ${dir}`, err);
    return found;
  }
  for (const e of entries) {
    const p = join(dir, e);
    try {
      if (!statSync(p).isDirectory() || !isModelFolder(p)) continue;
      const aside = setAsideFolder(p);
      if (aside === null) found.push(p);
      else if (aside.kind === "replaced")
        note(`(not listed: ${p}, the model folder ${aside.out} held before a training run replaced it, kept until that run finishes)\n`);
    } catch {
      // unreadable entry: skip
    }
  }
  return found;
}

/** what a LoRA adapter folder's model is: "LoRA adapter on ../base" (its base as adapter_config.json names it) */
function adapterLabel(dir: string): string {
  try {
    return `LoRA adapter on ${readLoraConfig(dir).base}`;
  } catch {
    return "LoRA adapter"; // a broken adapter_config.json: loading it says what is wrong
  }
}

/** The models of a folder: its best model (or its LoRA adapter), then its checkpoints, newest first. */
function listModels(dir: string): ModelChoice[] {
  const lora = !existsSync(join(dir, "model.safetensors"));
  const out: ModelChoice[] = [{ label: lora ? adapterLabel(dir) : "best model (model.safetensors)", path: dir }];
  const training = join(dir, "training");
  if (existsSync(training)) {
    for (const name of checkpointNames(training)) {
      const step = name.slice("checkpoint-".length);
      out.push({
        // step 0 is saved as a run starts: random weights, or those of the model it started from
        label: `checkpoint at step ${step}${step === "0" ? " (the weights training started from)" : ""}`,
        path: join(training, name),
      });
    }
  }
  return out;
}

type Write = (s: string) => void;

/** Ask until the answer is one of 1..n (or a listed name); null at end of input or /quit. */
async function choose(reader: LineReader, write: Write, title: string, items: readonly string[]): Promise<number | null> {
  write(`${title}\n`);
  for (const [i, item] of items.entries()) write(`  ${i + 1}) ${item}\n`);
  for (;;) {
    const line = await reader.next(`choose 1-${items.length}> `);
    if (line === null) return null;
    const a = line.trim();
    if (a === "/quit" || a === "/exit" || a === "/q") return null;
    if (a === "/help") {
      write(`type the number of your choice; /quit leaves\n`);
      continue;
    }
    const n = Number(a);
    if (Number.isInteger(n) && n >= 1 && n <= items.length) return n - 1;
    const byName = items.findIndex((it) => it.toLowerCase().startsWith(a.toLowerCase()) && a.length > 0);
    if (byName >= 0) return byName;
    write(`please type a number from 1 to ${items.length}\n`);
  }
}

type ModeResult = "quit" | "mode" | "model";

async function generateMode(model: GPT, tokenizer: Tokenizer, o: ChatOptions, reader: LineReader, write: Write): Promise<ModeResult> {
  write("generate: type a prompt and Enter; Enter alone continues the text. /reset starts over, /help for commands.\n");
  let ids: number[] = [];
  let run = 0;
  for (;;) {
    const line = await reader.next("> ");
    if (line === null) return "quit";
    const t = line.trim();
    if (t.startsWith("/")) {
      const cmd = t.split(/\s+/)[0]?.toLowerCase();
      if (cmd === "/mode") return "mode";
      if (cmd === "/model") return "model";
      const r = slashCommand(t, o);
      if (r.kind === "quit") return "quit";
      if (r.kind === "reset") {
        ids = [];
        write("(text cleared)\n");
      } else if (r.kind === "message")
        write(`${r.text}${cmd === "/help" ? "\n/mode      choose another mode\n/model     choose another model" : ""}\n`);
      continue;
    }
    try {
      if (line.length > 0) ids.push(...encodeUserText(tokenizer, line, {}, (w) => write(`(${w})\n`)));
      // nothing to continue: start from the start prompt, which is not shown (so neither is the
      // space a word tokenizer would put after it)
      const fromStart = ids.length === 0;
      if (fromStart) ids = startPrompt(tokenizer).ids;
      if (line.length > 0) write(line);
      const fresh: number[] = [];
      const streamer = new TextStreamer(tokenizer, fromStart ? [] : ids);
      const eot = tokenizer.specialTokenId("<|endoftext|>");
      const tokens = generateTokensAsync(model, ids, { ...o, seed: o.seed + run, stopIds: eot === undefined ? [] : [eot] });
      const ended = await reader.stream(tokens, (id) => {
        fresh.push(id);
        write(forStdout(streamer.push(id)));
      });
      // a stopped continuation keeps the text shown so far: Enter continues from there
      ids.push(...fresh);
      run++;
      write(ended === "stopped" ? `${STOPPED}\n` : "\n");
    } catch (err) {
      if (!(err instanceof MinigptError)) throw err;
      write(`(${errorText(err)})\n`);
    }
  }
}

async function chatMode(
  model: GPT,
  tokenizer: Tokenizer,
  info: Record<string, unknown>,
  o: ChatOptions,
  reader: LineReader,
  write: Write,
  dir: string,
): Promise<ModeResult> {
  if (!chatTokenIds(tokenizer)) {
    write(
      `this model has no chat tokens <|user|> <|assistant|> <|end|>; fine-tune it with: minigpt train --chat FILE.jsonl --init ${dir} --out ${dir}-chat\n`,
    );
    return "mode";
  }
  const note = notFineTunedForChat(info, tokenizer, dir);
  if (note) write(`${note}\n`);
  const session = new ChatSession(model, tokenizer, {}, dir);
  session.options = o; // shared settings: /temp in one mode holds in the others
  write("chat: type a message; /reset forgets the conversation, /mode or /model to go back, /quit to leave.\n");
  let result: ModeResult = "quit";
  // chatLoop ends at /quit, Ctrl-C at the prompt or end of input; /mode and /model are this menu's
  await chatLoop(session, reader, write, (line) => {
    const cmd = line.trim().split(/\s+/)[0]?.toLowerCase();
    if (cmd !== "/mode" && cmd !== "/model") return false;
    result = cmd === "/mode" ? "mode" : "model";
    return true;
  });
  return result;
}

/** The interactive session over any line reader and writer. */
async function interactive(dir: string, reader: LineReader, write: Write): Promise<number> {
  const o: ChatOptions = { maxNewTokens: 200, temperature: 0.8, topK: 0, topP: 1, seed: 1337, cache: true, suppressIds: [] };
  write(`minigpt interactive (/help for commands; Ctrl-C stops a reply; /quit or Ctrl-C at the prompt leaves)\n`);
  for (;;) {
    const folders = findModelFolders(dir, write);
    if (folders.length === 0) {
      write(
        `no model folders in ${resolve(dir)} (a folder with config.json, model.safetensors and tokenizer.json, or a LoRA adapter's adapter_config.json and adapter_model.safetensors); train one with: minigpt train --out ${dir === "." ? "out" : join(dir, "out")}\n`,
      );
      return 1;
    }
    const f = folders.length === 1 ? 0 : await choose(reader, write, "model folders:", folders);
    if (f === null) return 0;
    const folder = folders[f] as string;
    if (folders.length === 1) write(`model folder: ${folder}\n`);
    const models = listModels(folder);
    const m =
      models.length === 1
        ? 0
        : await choose(
            reader,
            write,
            `models in ${folder}:`,
            models.map((x) => x.label),
          );
    if (m === null) return 0;
    const choice = models[m] as ModelChoice;
    let loaded: ModelFolder;
    try {
      // as generate and chat load it: a checkpoint with its run's tokenizer, a LoRA adapter merged
      // into its base, quantized weights with the int kernels; what it says comes in parentheses
      loaded = loadModelFolder(choice.path, (text) => write(`(${text})\n`), "decode");
      o.suppressIds = unseenSpecialIds(loaded);
    } catch (err) {
      if (!(err instanceof MinigptError)) throw err;
      write(`(${errorText(err)})\n`);
      continue;
    }
    const { model, tokenizer, info } = loaded;
    const c = model.config;
    write(
      `loaded ${choice.label} of ${folder}: ${model.parameterCount().toLocaleString("en-US")} parameters, ${counted(c.nLayer, "layer")}, context ${c.blockSize}, ${tokenizer.kind} tokenizer of ${tokenizer.vocabSize}\n`,
    );
    try {
      let next: ModeResult = "mode";
      while (next === "mode") {
        const mode = await choose(reader, write, "mode:", ["generate (Enter continues the text)", "chat", "analyze"]);
        if (mode === null) return 0;
        if (mode === 0) next = await generateMode(model, tokenizer, o, reader, write);
        else if (mode === 1) next = await chatMode(model, tokenizer, info, o, reader, write, folder);
        else {
          write(`${formatAnalysis(analyzeModel(model, folder))}\n`);
          next = "mode";
        }
      }
      if (next === "quit") return 0;
    } finally {
      model.dispose();
    }
  }
}

export async function runInteractive(argv: readonly string[]): Promise<number> {
  const f = parseFlags(interactiveSpec, argv);
  const dir = f.string("dir");
  if (!existsSync(dir)) fail(`--dir ${dir} does not exist; give the folder that holds your model folders`);
  // a file would be listed as a folder with no models, with advice to train into FILE/out
  if (!statSync(dir).isDirectory()) fail(`--dir ${dir} is a file, not a folder; give the folder that holds your model folders`);
  const reader = new LineReader();
  try {
    return await interactive(dir, reader, (s) => process.stdout.write(s));
  } finally {
    reader.close();
  }
}
