/**
 * Which special tokens generation suppresses: the ones a model was never trained to predict. No file
 * system: a folder's info is config.json's "minigpt" object, however it was read.
 */
import type { Tokenizer } from "../tokenizer/types.js";

/**
 * The special tokens a folder's model was trained to predict: config.json's
 * minigpt.special_targets. A folder without the list (trained elsewhere, or by an older minigpt)
 * may have been trained on any of its specials, so all count.
 */
export function trainedSpecials(info: Record<string, unknown>, tokenizer: Tokenizer): readonly string[] {
  const list = info.special_targets;
  return Array.isArray(list) ? list.filter((t): t is string => typeof t === "string") : tokenizer.specialTokens;
}

/**
 * Ids of the special tokens the folder's model was never trained to predict. Their logits are
 * whatever initialisation left, so an undertrained model samples e.g. <|user|> into plain text;
 * generation suppresses them. A folder without the list suppresses nothing.
 */
export function unseenSpecialIds(folder: { tokenizer: Tokenizer; info: Record<string, unknown> }): number[] {
  return specialIdsExcept(folder.tokenizer, trainedSpecials(folder.info, folder.tokenizer));
}

/** ids of the tokenizer's special tokens that are not in `keep` */
export function specialIdsExcept(tokenizer: Tokenizer, keep: readonly string[]): number[] {
  const ids: number[] = [];
  for (const s of tokenizer.specialTokens) {
    const id = tokenizer.specialTokenId(s);
    if (id !== undefined && !keep.includes(s)) ids.push(id);
  }
  return ids;
}

/**
 * Whether a folder's model has the chat tokens in its vocabulary but never learned to end a reply
 * (no <|end|> among the tokens it was trained to predict): it answers with noise until the token
 * limit. False for a chat-fine-tuned model, or a folder that does not record what it was trained on.
 */
export function neverLearnedToEndReplies(info: Record<string, unknown>, tokenizer: Tokenizer): boolean {
  return Array.isArray(info.special_targets) && !trainedSpecials(info, tokenizer).includes("<|end|>");
}
