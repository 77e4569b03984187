/**
 * Which special tokens generation suppresses: the ones a model was never trained to predict. No file
 * system: a folder's info is config.json's "minigpt" object, however it was read.
 */
import type { Tokenizer } from "../tokenizer/types.js";

/**
 * Ids of the special tokens the folder's model was never trained to predict (config.json's
 * minigpt.special_targets lists the ones it was). Their logits are whatever initialisation left, so
 * an undertrained model samples e.g. <|user|> into plain text; generation suppresses them. A folder
 * without the list (trained elsewhere or by an older minigpt) suppresses nothing.
 */
export function unseenSpecialIds(folder: { tokenizer: Tokenizer; info: Record<string, unknown> }): number[] {
  const list = folder.info.special_targets;
  if (!Array.isArray(list)) return [];
  return specialIdsExcept(folder.tokenizer, list);
}

/** ids of the tokenizer's special tokens that are not in `keep` */
export function specialIdsExcept(tokenizer: Tokenizer, keep: readonly unknown[]): number[] {
  const ids: number[] = [];
  for (const s of tokenizer.specialTokens) {
    const id = tokenizer.specialTokenId(s);
    if (id !== undefined && !keep.includes(s)) ids.push(id);
  }
  return ids;
}
