/**
 * Fitting training data to a model's vocabulary. Byte-level vocabularies (BPE, GPT-2) and character
 * vocabularies with byte fallback encode any text. Still, a fine-tune of a character or word
 * vocabulary appends the characters (words) its data needs as new ids, for the trainer to give new
 * embedding rows (as it does for the chat tokens): one token per character is what the model was
 * trained on, and a model made before byte fallback has no other way. Where the vocabulary cannot
 * grow (resuming a run: the model's shape is fixed), data it cannot encode is an error that names
 * the file and line.
 */
import { readFileSync } from "node:fs";
import { fail, withFs } from "../errors.js";
import { describeChar } from "../tokenizer/char.js";
import { SpecialSplitter } from "../tokenizer/chunked.js";
import { LookupTokenizer } from "../tokenizer/lookup.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type Message, said } from "../wording.js";

export interface VocabularyFit {
  /** a fine-tune: append the pieces the data needs to a character or word vocabulary */
  grow: boolean;
  /** what the user can do about data the vocabulary cannot encode (the end of that error) */
  hint?: Message;
}

const LAST_WHITESPACE = /\p{White_Space}(?!.*\p{White_Space})/su;

/**
 * `tokenizer`, grown by the pieces of `texts` it lacks when `grow` (their order: by code point for
 * characters). `texts` are separate texts (chat messages), or with `chunked` the chunks of one text
 * (the token cache's path), where a special-token string or a word may straddle two chunks.
 */
export function fitVocabulary(
  tokenizer: Tokenizer,
  texts: Iterable<string>,
  specialsAsText: boolean,
  grow: boolean,
  chunked = false,
): { tokenizer: Tokenizer; added: string[] } {
  if (!grow || !(tokenizer instanceof LookupTokenizer)) return { tokenizer, added: [] };
  const missing = new Set<string>();
  const note = (text: string) => {
    for (const p of tokenizer.unknownPieces(text, { specialsAsText: true })) missing.add(p);
  };
  const splitter = new SpecialSplitter(specialsAsText ? [] : tokenizer.specialTokens);
  // ordinary text: characters are settled as they come; a word once whitespace follows it
  const ordinary = (text: string, final: boolean): number => {
    const m = final || tokenizer.kind === "char" ? null : LAST_WHITESPACE.exec(text);
    const end = final || tokenizer.kind === "char" ? text.length : m === null ? 0 : m.index + m[0].length;
    note(text.slice(0, end));
    return end;
  };
  for (const text of texts) splitter.push(text, !chunked, ordinary, () => {});
  if (chunked) splitter.push("", true, ordinary, () => {});
  if (missing.size === 0) return { tokenizer, added: [] };
  const added = [...missing];
  if (tokenizer.kind === "char") added.sort((a, b) => (a.codePointAt(0) as number) - (b.codePointAt(0) as number));
  return { tokenizer: tokenizer.withPieces(added), added };
}

/** `character "ë" (U+00EB)` or `word "hello"` */
function describePiece(tokenizer: Tokenizer, piece: string): string {
  return tokenizer.kind === "char" ? `character ${describeChar(piece)}` : `word ${JSON.stringify(piece)}`;
}

/** The one-line error for a piece of the training data (at `where`: "FILE line N") the vocabulary cannot encode. */
export function unencodable(where: string, tokenizer: Tokenizer, piece: string, hint?: Message): never {
  return fail(
    said`${where}: ${describePiece(tokenizer, piece)} is not in the model's ${tokenizer.kind} vocabulary${hint ? said`; ${hint}` : ""}`,
  );
}

/**
 * "FILE line N": the first line of `files` that holds `piece` (a word only where whitespace
 * surrounds it). Read again only on this error path, so the data loader needs no line bookkeeping.
 */
export function locatePiece(files: readonly string[], piece: string, kind: string): string {
  const escaped = piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(kind === "word" ? `(?<!\\S)${escaped}(?!\\S)` : escaped, "u");
  for (const file of files) {
    const lines = withFs(`cannot read ${file}`, () => readFileSync(file, "utf8")).split("\n");
    const i = lines.findIndex((l) => pattern.test(l));
    if (i >= 0) return `${file} line ${i + 1}`;
  }
  return files.length === 1 ? (files[0] as string) : "the training data";
}
