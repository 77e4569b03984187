/**
 * A small, strict flag parser: long flags only (`--max-steps 200` or `--max-steps=200`), typed,
 * unknown flags are errors, and `--help` is generated from the same table that parses.
 */
import { fail } from "../index.js";

type FlagType = "string" | "int" | "float" | "bool";

export interface FlagSpec {
  name: string;
  type: FlagType;
  default: string | number | boolean;
  help: string;
  /** the values allowed (a number flag's as written in base 10, e.g. "8", "4") */
  choices?: readonly string[];
  /** numbers: the smallest value allowed (inclusive) */
  min?: number;
  /** numbers: the largest value allowed (inclusive) */
  max?: number;
  /** numbers: values must be above this (exclusive), e.g. 0 for a learning rate */
  above?: number;
  /** numbers: values must be below this (exclusive), e.g. 1 for a probability that must not be 1 */
  below?: number;
  /** what --help shows as the default where the value itself would mislead (a rank of 0 meaning "no adapter") */
  shownDefault?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: readonly FlagSpec[];
  /** how many positional arguments are allowed (e.g. the text of `tokenize`) */
  maxPositionals?: number;
  /**
   * what to say for a flag other tools have that this command takes another way (tokenize's
   * `--text "..."`: the text goes without a flag), instead of the nearest flag's name
   */
  takenOtherwise?: Readonly<Record<string, string>>;
  examples?: readonly string[];
  /** paragraphs printed after the examples: what the command does that its flags do not say */
  notes?: readonly string[];
  /**
   * --backend and --threads are for a thread the command starts itself (serve's generation thread):
   * the command's own thread starts no kernel backend
   */
  backendElsewhere?: boolean;
}

export class ParsedFlags {
  constructor(
    private readonly values: Map<string, string | number | boolean>,
    /** flags the user gave explicitly */
    readonly explicit: ReadonlySet<string>,
    readonly positionals: readonly string[],
  ) {}

  string(name: string): string {
    return this.get(name, "string") as string;
  }
  int(name: string): number {
    return this.get(name, "number") as number;
  }
  float(name: string): number {
    return this.get(name, "number") as number;
  }
  bool(name: string): boolean {
    return this.get(name, "boolean") as boolean;
  }
  has(name: string): boolean {
    return this.explicit.has(name);
  }
  private get(name: string, type: string): string | number | boolean {
    const v = this.values.get(name);
    if (typeof v !== type) throw new Error(`flag --${name} is not declared as a ${type}`);
    return v as string | number | boolean;
  }
}

export function parseFlags(spec: CommandSpec, argv: readonly string[]): ParsedFlags {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const values = new Map<string, string | number | boolean>(spec.flags.map((f) => [f.name, f.default]));
  const explicit = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--") || arg === "--") {
      if (arg === "--") {
        positionals.push(...argv.slice(i + 1));
        break;
      }
      if (arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg))
        fail(`unknown flag ${arg} for minigpt ${spec.name} (flags are long: see minigpt ${spec.name} --help)`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let flag = byName.get(name);
    if (!flag && name.startsWith("no-") && byName.get(name.slice(3))?.type === "bool") {
      flag = byName.get(name.slice(3));
      name = name.slice(3);
      inline = "false";
    }
    if (!flag && byName.get(`no-${name}`)?.type === "bool") fail(`--${name} is the default; --no-${name} turns it off`);
    const otherwise = flag ? undefined : spec.takenOtherwise?.[name];
    if (otherwise) fail(`there is no --${name}: ${otherwise}`);
    if (!flag) {
      const near = suggestFlag(
        name,
        spec.flags.map((f) => f.name),
      );
      fail(`unknown flag --${name} for minigpt ${spec.name}${near ? ` (did you mean --${near}?)` : ""}; see minigpt ${spec.name} --help`);
    }
    let raw: string;
    if (flag.type === "bool") {
      raw = inline ?? "true";
    } else if (inline !== undefined) {
      raw = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined) fail(`--${name} needs a value (${flag.help})`);
      raw = next;
      i++;
    }
    values.set(name, convert(flag, raw));
    explicit.add(name);
  }
  const maxPos = spec.maxPositionals ?? 0;
  if (positionals.length > maxPos)
    fail(`unexpected argument ${JSON.stringify(positionals[maxPos])} for minigpt ${spec.name}; see minigpt ${spec.name} --help`);
  return new ParsedFlags(values, explicit, positionals);
}

/**
 * flags that name a file or folder: an empty value is a mistake (an unset shell variable), never
 * "the current folder" or "the default"
 */
const PATH_FLAGS = new Set(["model", "out", "data", "init", "dir", "file", "chat"]);

function convert(flag: FlagSpec, raw: string): string | number | boolean {
  switch (flag.type) {
    case "bool":
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      return fail(`--${flag.name} is a switch: give it alone, or =true / =false, not ${JSON.stringify(raw)}`);
    case "int": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isInteger(v)) fail(`--${flag.name} needs a whole number, got ${JSON.stringify(raw)}`);
      if (flag.choices && !flag.choices.includes(String(v)))
        fail(`--${flag.name} must be one of ${choiceList(flag.choices).join(", ")}, got ${JSON.stringify(raw)}`);
      return inRange(flag, v);
    }
    case "float": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) fail(`--${flag.name} needs a number, got ${JSON.stringify(raw)}`);
      return inRange(flag, v);
    }
    case "string":
      if (PATH_FLAGS.has(flag.name) && raw.trim() === "")
        fail(`--${flag.name} needs a file or folder, got an empty value (an unset shell variable?)`);
      if (flag.choices && !flag.choices.includes(raw))
        fail(`--${flag.name} must be one of ${choiceList(flag.choices).join(", ")}, got ${JSON.stringify(raw)}`);
      return raw;
  }
}

/** choices as shown to the user: "" (the flag's "not given" default) is not one to type */
function choiceList(choices: readonly string[]): string[] {
  return choices.filter((c) => c !== "");
}

/** the allowed range of a number flag in words ("> 0", ">= 1", "0 to 1"), or "" when any number goes */
function rangeText(flag: FlagSpec): string {
  const lo = flag.above !== undefined ? `> ${flag.above}` : flag.min !== undefined ? `>= ${flag.min}` : "";
  const hi = flag.below !== undefined ? `< ${flag.below}` : flag.max !== undefined ? `<= ${flag.max}` : "";
  if (flag.min !== undefined && flag.max !== undefined && flag.above === undefined && flag.below === undefined)
    return `${flag.min} to ${flag.max}`;
  return lo && hi ? `${lo} and ${hi}` : lo || hi;
}

function inRange(flag: FlagSpec, v: number): number {
  const ok =
    (flag.min === undefined || v >= flag.min) &&
    (flag.max === undefined || v <= flag.max) &&
    (flag.above === undefined || v > flag.above) &&
    (flag.below === undefined || v < flag.below);
  if (!ok) fail(`--${flag.name} must be ${rangeText(flag)}, got ${v}`);
  return v;
}

export function helpText(spec: CommandSpec): string {
  const lines = [`minigpt ${spec.name}: ${spec.summary}`, "", `usage: ${spec.usage}`, "", "flags:"];
  const placeholder = (f: FlagSpec) =>
    f.type === "bool"
      ? ""
      : ` <${f.choices ? choiceList(f.choices).join("|") : f.type === "string" ? "value" : f.type === "int" ? "n" : "x"}>`;
  const lefts = spec.flags.map((f) => `  --${f.name}${placeholder(f)}`);
  // the help column starts after the longest flag, unless that one is very long (it then wraps)
  const width = Math.min(Math.max(...lefts.map((l) => l.length), 8) + 2, 40);
  spec.flags.forEach((f, i) => {
    const left = lefts[i] as string;
    // a default with whitespace (the newline prompt) is shown quoted, so it is visible
    const shown =
      f.shownDefault ?? (typeof f.default === "string" && /[\s"]/.test(f.default) ? JSON.stringify(f.default) : String(f.default));
    const range = rangeText(f);
    const notes = [range, f.type === "bool" || f.default === "" ? "" : `default: ${shown}`].filter((n) => n !== "");
    const text = `${f.help}${notes.length > 0 ? ` (${notes.join("; ")})` : ""}`;
    if (left.length + 1 > width) lines.push(left, `${" ".repeat(width)}${text}`);
    else lines.push(`${left.padEnd(width)}${text}`);
  });
  lines.push(`${"  --help".padEnd(width)}show this help`);
  if (spec.examples && spec.examples.length > 0) lines.push("", "examples:", ...spec.examples.map((e) => `  ${e}`));
  if (spec.notes && spec.notes.length > 0) lines.push("", ...spec.notes);
  return lines.join("\n");
}

/** edit distance (insertions, deletions, substitutions, and swaps of neighbours: "trian" is 1 from "train") */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate a mistyped name most likely meant, or undefined: the closest within a third of its
 * length in edits (trian -> train, --lrr -> --lr); else one it begins (--ep -> --epochs) or one that
 * contains it, the nearest in length (--steps -> --max-steps); or a longer half of it. Never no-X for
 * X, which means the opposite (the caller says that X is the default).
 */
export function nearest(name: string, candidates: readonly string[]): string | undefined {
  const pool = candidates.filter((c) => c !== `no-${name}`);
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const c of pool) {
    const dist = editDistance(name, c);
    if (dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  if (best !== undefined || name.length < 2) return best;
  const related = pool.filter((c) => c.includes(name) || (name.includes(c) && c.length > name.length / 2));
  const rank = (c: string) => (c.startsWith(name) || name.startsWith(c) ? 0 : 1000) + Math.abs(c.length - name.length);
  return related.sort((a, b) => rank(a) - rank(b))[0];
}

/**
 * Names other tools give the same setting (nanoGPT's train.py and sample.py, Hugging Face's
 * generate() and Trainer, llama.cpp, OpenAI's API), in their dashed spelling, and ours: the first
 * one the command has is suggested. A did-you-mean, never a silent alias, so each flag keeps one name.
 */
const FLAG_ALIASES: Record<string, readonly string[]> = {
  "max-tokens": ["max-new-tokens"],
  "max-length": ["max-new-tokens"],
  "num-tokens": ["max-new-tokens"],
  "n-predict": ["max-new-tokens"],
  temp: ["temperature"],
  "num-return-sequences": ["num-samples"],
  "n-samples": ["num-samples"],
  samples: ["num-samples"],
  start: ["prompt", "text"],
  prompt: ["text"],
  text: ["prompt"],
  "stop-sequence": ["stop"],
  "stop-sequences": ["stop"],
  "stop-strings": ["stop"],
  "learning-rate": ["lr"],
  "min-learning-rate": ["min-lr"],
  "max-iters": ["max-steps"],
  iters: ["max-steps"],
  "num-steps": ["max-steps"],
  "max-train-steps": ["max-steps"],
  "num-train-epochs": ["epochs"],
  "eval-iters": ["eval-steps"],
  "warmup-iters": ["warmup-steps"],
  "gradient-accumulation-steps": ["grad-accum"],
  "max-grad-norm": ["grad-clip"],
  "save-steps": ["checkpoint-interval"],
  "save-interval": ["checkpoint-interval"],
  "out-dir": ["out"],
  "output-dir": ["out"],
  "init-from": ["init", "model"],
  "model-name-or-path": ["model", "init"],
  "model-path": ["model"],
  checkpoint: ["model"],
  ckpt: ["model"],
  dataset: ["data"],
  "train-file": ["data"],
  input: ["data", "file"],
  "hidden-size": ["n-embd"],
  "embed-dim": ["n-embd"],
  "embedding-dim": ["n-embd"],
  "n-embed": ["n-embd"],
  "intermediate-size": ["n-inner"],
  "ffn-dim": ["n-inner"],
  "n-ctx": ["block-size"],
  "n-positions": ["block-size"],
  "d-model": ["n-embd"],
  "num-layers": ["n-layer"],
  "num-hidden-layers": ["n-layer"],
  "num-heads": ["n-head"],
  "num-attention-heads": ["n-head"],
  "context-length": ["block-size"],
  "seq-len": ["block-size"],
  "max-seq-len": ["block-size"],
  device: ["backend"],
};

/**
 * The flag an unknown name most likely meant: the same name with dashes for underscores
 * (--max_new_tokens), another tool's name for it (--max-tokens, --temp), or the nearest spelling.
 */
function suggestFlag(name: string, candidates: readonly string[]): string | undefined {
  const dashed = name.replaceAll("_", "-").toLowerCase();
  if (candidates.includes(dashed)) return dashed;
  const alias = FLAG_ALIASES[dashed]?.find((a) => candidates.includes(a));
  return alias ?? nearest(dashed, candidates);
}
