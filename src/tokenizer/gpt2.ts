import gpt2Ranks from "js-tiktoken/ranks/gpt2";
import { type BpeMerge, ByteLevelBpe } from "./bpe.js";

let cached: ByteLevelBpe | undefined;

/**
 * OpenAI's GPT-2 encoding (50,257 tokens, ids as OpenAI's), built from the ranks table that
 * js-tiktoken ships; only the table is borrowed, the encoder is ours.
 *
 * tiktoken stores no merge list: the rank of a token is its id, and any two adjacent parts whose
 * bytes concatenate to a token may merge, with that token's rank. So every split of every token
 * into two tokens becomes a merge rule ranked by the whole token's id.
 */
export function gpt2Tokenizer(): ByteLevelBpe {
  if (cached) return cached;
  const pieces: Uint8Array[] = [];
  const latin1: string[] = [];
  for (const line of gpt2Ranks.bpe_ranks.split("\n")) {
    if (line === "") continue;
    const fields = line.split(" ");
    const offset = Number.parseInt(fields[1] as string, 10);
    for (let i = 2; i < fields.length; i++) {
      // atob (not Buffer, which browsers lack) decodes to a binary string: one char per byte
      const binary = atob(fields[i] as string);
      pieces[offset + i - 2] = Uint8Array.from(binary, (c) => c.charCodeAt(0));
      latin1[offset + i - 2] = binary;
    }
  }
  const idOf = new Map<string, number>();
  for (const [id, s] of latin1.entries()) idOf.set(s, id);
  const merges: BpeMerge[] = [];
  const ranks: number[] = [];
  latin1.forEach((s, id) => {
    for (let cut = 1; cut < s.length; cut++) {
      const left = idOf.get(s.slice(0, cut));
      const right = idOf.get(s.slice(cut));
      if (left !== undefined && right !== undefined) {
        merges.push([left, right, id]);
        ranks.push(id);
      }
    }
  });
  const specials = new Map(Object.entries(gpt2Ranks.special_tokens));
  cached = new ByteLevelBpe({
    kind: "gpt2",
    pieces,
    merges,
    mergeRanks: ranks,
    specials,
    ignoreMerges: true,
  });
  return cached;
}
