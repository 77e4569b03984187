import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { MinigptError } from "../src/errors.js";
import { saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { type GPTConfig, makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { CharTokenizer } from "../src/tokenizer/char.js";

/**
 * Every fixture folder to check: the copies in tests/fixtures (so a fresh clone has them),
 * ../shared/fixtures when it exists, and the folders named in MINIGPT_FIXTURES (paths joined by ":";
 * a path is either a fixture folder or a folder of fixture folders). A folder whose files are
 * byte-identical to one already listed (../shared/fixtures holds the same two models as
 * tests/fixtures today) is checked once.
 */
export function fixtureFolders(): { name: string; dir: string }[] {
  const roots = [resolve("tests/fixtures"), resolve("../shared/fixtures")];
  const explicit = (process.env.MINIGPT_FIXTURES ?? "").split(":").filter((p) => p.length > 0);
  const found: { name: string; dir: string }[] = [];
  const seen = new Set<string>();
  const addFolder = (dir: string, origin: string) => {
    const abs = resolve(dir);
    const content = folderDigest(abs);
    if (seen.has(abs) || seen.has(content)) return;
    seen.add(abs);
    seen.add(content);
    found.push({ name: `${abs.split("/").pop()} (${origin})`, dir: abs });
  };
  for (const root of roots) {
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root).sort()) {
      const dir = join(root, entry);
      if (statSync(dir).isDirectory()) addFolder(dir, root.includes("shared") ? "../shared/fixtures" : "tests/fixtures");
    }
  }
  for (const p of explicit) {
    if (!existsSync(p)) throw new Error(`MINIGPT_FIXTURES names ${p}, which does not exist`);
    if (existsSync(join(p, "config.json"))) addFolder(p, "MINIGPT_FIXTURES");
    else
      for (const entry of readdirSync(p).sort())
        if (existsSync(join(p, entry, "config.json"))) addFolder(join(p, entry), "MINIGPT_FIXTURES");
  }
  return found;
}

/** sha256 over a folder's file names and bytes (fixture folders are flat and small) */
function folderDigest(dir: string): string {
  const h = createHash("sha256");
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (!statSync(p).isFile()) continue;
    h.update(name).update("\0").update(readFileSync(p));
  }
  return h.digest("hex");
}

export { closeReport, maxAbsDiff } from "./close.js";

/** Assert fn throws a MinigptError (a user-fixable mistake) with a one-line message matching every pattern. */
export function throwsUser(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MinigptError, `expected MinigptError, got ${String(err)}`);
    assert.ok(!err.message.includes("\n"), "error message should be one line");
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

const madeDirs: string[] = [];

/**
 * A fresh folder under the OS temp dir, removed when the test file's process exits (set
 * MINIGPT_KEEP_TMP=1 to keep them for a look after a failure).
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (madeDirs.length === 0 && !process.env.MINIGPT_KEEP_TMP)
    process.on("exit", () => {
      for (const d of madeDirs) rmSync(d, { recursive: true, force: true });
    });
  madeDirs.push(dir);
  return dir;
}

/**
 * DIR/corpus.txt: a deterministic text of short sentences over 14 words, at least `minChars` long
 * (a few KB, so CLI training runs take seconds); returns its path.
 */
export function wordCorpus(dir: string, minChars = 6000): string {
  const rng = new Rng(5);
  const words = ["the", "whale", "sea", "ship", "captain", "white", "ahab", "call", "me", "ishmael", "and", "of", "a", "to"];
  let text = "";
  while (text.length < minChars) {
    const n = 4 + rng.int(8);
    text += `${Array.from({ length: n }, () => words[rng.int(words.length)]).join(" ")}.\n`;
  }
  const file = join(dir, "corpus.txt");
  writeFileSync(file, text);
  return file;
}

/** node's arguments that run the CLI from source, by absolute paths (so from any working folder) */
export const CLI = ["--import", import.meta.resolve("tsx"), resolve("src/cli/entry.ts")];

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `minigpt ...args` in a child process, as a user runs it, with one kernel thread (MINIGPT_THREADS=1:
 * the test files run one at a time on a small machine, and every run takes the same path) unless
 * `env` says otherwise; `input` is piped to stdin; past `timeoutMs` it is killed (status null).
 */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): CliResult {
  const r = spawnSync(process.execPath, [...CLI, ...args], {
    encoding: "utf8",
    cwd: options.cwd,
    timeout: options.timeoutMs,
    input: options.input,
    env: { ...process.env, MINIGPT_THREADS: "1", ...options.env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** where `script` (util-linux; Debian's essential bsdutils package) is, or null */
export const SCRIPT = ["/usr/bin/script", "/bin/script"].find((p) => existsSync(p)) ?? null;

/** One step of a terminal session: wait until the output (after the last step's match) matches, then type. */
export interface TerminalStep {
  waitFor: RegExp;
  /** typed into the terminal: "\x03" is Ctrl-C, a line ends with "\n" */
  type?: string;
}

/**
 * `minigpt ...args` on a pseudo-terminal, as a user at a keyboard runs it (`script -qec`: the
 * terminal's line discipline turns a typed Ctrl-C into SIGINT for the program, and echoes input).
 * Each step waits for its output (at most `stepMs`) and types its keys; then the program must exit.
 * Rejects with the output so far when a step never comes. Callers skip when SCRIPT is null.
 */
export function runInTerminal(
  args: readonly string[],
  steps: readonly TerminalStep[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; stepMs?: number } = {},
): Promise<{ status: number | null; output: string }> {
  if (!SCRIPT) throw new Error("no script command (util-linux): cannot make a pseudo-terminal");
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = `exec ${[process.execPath, ...CLI, ...args].map(quote).join(" ")}`;
  const child = spawn(SCRIPT, ["-qec", command, "/dev/null"], {
    cwd: options.cwd,
    env: { ...process.env, MINIGPT_THREADS: "1", ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let from = 0;
  let wake = () => {};
  child.stdout.on("data", (d: Buffer) => {
    output += d.toString("utf8");
    wake();
  });
  child.stderr.on("data", (d: Buffer) => {
    output += d.toString("utf8");
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const stepMs = options.stepMs ?? 30_000;
  return (async () => {
    try {
      for (const [i, step] of steps.entries()) {
        const deadline = Date.now() + stepMs;
        for (;;) {
          const m = step.waitFor.exec(output.slice(from));
          if (m) {
            from += m.index + m[0].length;
            break;
          }
          if (Date.now() > deadline || child.exitCode !== null)
            throw new Error(`terminal step ${i + 1}: no ${step.waitFor} in the output:\n${output}`);
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 200);
          });
        }
        if (step.type !== undefined) child.stdin.write(step.type);
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), stepMs);
      const status = await exited;
      clearTimeout(timer);
      return { status, output };
    } catch (e) {
      child.kill("SIGKILL");
      throw e;
    }
  })();
}

export interface StartedCli {
  child: ChildProcess;
  /** stderr so far */
  stderr(): string;
  /** stdout so far */
  stdout(): string;
  /** resolves when stderr (or stdout) has matched `pattern`, or with false when the process exits first */
  seen(pattern: RegExp, stream?: "stderr" | "stdout"): Promise<boolean>;
  exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
}

/** `minigpt ...args` started in a child process (as runCli, without waiting), to signal or race it. */
export function startCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): StartedCli {
  const child = spawn(process.execPath, [...CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, MINIGPT_THREADS: "1", ...options.env },
  });
  const text = { stderr: "", stdout: "" };
  const waiting: { pattern: RegExp; stream: keyof typeof text; resolve: (v: boolean) => void }[] = [];
  const matches = (w: { pattern: RegExp; stream: keyof typeof text }) => w.pattern.test(text[w.stream]);
  for (const stream of ["stderr", "stdout"] as const)
    child[stream]?.on("data", (d) => {
      text[stream] += String(d);
      for (const w of waiting.splice(0)) {
        if (matches(w)) w.resolve(true);
        else waiting.push(w);
      }
    });
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("close", (status, signal) => {
      for (const w of waiting.splice(0)) w.resolve(matches(w));
      r({ status, signal });
    }),
  );
  return {
    child,
    stderr: () => text.stderr,
    stdout: () => text.stdout,
    seen: (pattern, stream = "stderr") =>
      matches({ pattern, stream }) || child.exitCode !== null
        ? Promise.resolve(matches({ pattern, stream }))
        : new Promise((resolve) => waiting.push({ pattern, stream, resolve })),
    exited,
  };
}

/** `minigpt serve --model model --port 0 ...flags` started; resolves with its base URL once it listens */
export async function startServe(
  model: string,
  flags: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<{ url: string; cli: StartedCli }> {
  const cli = startCli(["serve", "--model", model, "--port", "0", ...flags], options);
  assert.ok(await cli.seen(/ on http:\/\/127\.0\.0\.1:\d+\/v1/), cli.stderr());
  const port = /on http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(cli.stderr())?.[1];
  return { url: `http://127.0.0.1:${port}`, cli };
}

/**
 * A model folder (config.json, model.safetensors, tokenizer files) made at `dir`: a freshly
 * initialised GPT (seeded) of `shape` on the characters of `text`. Returns `dir`.
 */
export function charModelFolder(dir: string, text: string, shape: Partial<Omit<GPTConfig, "vocabSize">>, seed = 1337): string {
  mkdirSync(dir, { recursive: true });
  const tok = CharTokenizer.fromText(text);
  const model = new GPT(makeConfig({ ...shape, vocabSize: tok.vocabSize }), seed);
  saveModel(model, dir);
  saveTokenizer(dir, tok);
  model.dispose();
  return dir;
}
