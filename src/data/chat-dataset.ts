/** Chat fine-tuning data (Node): a JSONL file of conversations as a training dataset (see chat.ts). */
import { existsSync, readFileSync } from "node:fs";
import { fail, withFs } from "../errors.js";
import type { Rng } from "../random.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { said, setting } from "../wording.js";
import { type Batch, specialTargets } from "./batches.js";
import { chatExample, chatTokenIds, encodeChat, parseChatJsonlLines } from "./chat.js";
import type { Dataset } from "./dataset.js";
import { fitVocabulary, unencodable, type VocabularyFit } from "./vocabulary.js";

/** Random conversations per batch, each one row padded to T. */
class ChatSampler {
  constructor(
    private readonly rows: readonly Batch[],
    private readonly T: number,
    private readonly B: number,
    private readonly rng: Rng,
  ) {}
  next(): Batch {
    const x = new Int32Array(this.B * this.T);
    const y = new Int32Array(this.B * this.T);
    for (let b = 0; b < this.B; b++) {
      const row = this.rows[this.rng.int(this.rows.length)] as Batch;
      x.set(row.x, b * this.T);
      y.set(row.y, b * this.T);
    }
    return { x, y };
  }
}

/**
 * The chat fine-tuning dataset of a JSONL file. Conversations longer than blockSize + 1 tokens are
 * cut at the end. With 10 or more conversations the last 10% are held out for validation; with
 * fewer, validation uses the training conversations (said in the dataset name).
 */
export function loadChatDataset(
  file: string,
  given: Tokenizer,
  blockSize: number,
  batchSize: number,
  vocabulary: VocabularyFit = { grow: false },
): Dataset {
  if (!existsSync(file)) fail(said`${setting("chat")} file ${file} does not exist`);
  const lines = parseChatJsonlLines(
    withFs(`cannot read the chat file ${file}`, () => readFileSync(file, "utf8")),
    file,
  );
  const contents = lines.flatMap((c) => c.messages.map((m) => m.content));
  const { tokenizer, added } = fitVocabulary(given, contents, true, vocabulary.grow);
  const t = chatTokenIds(tokenizer);
  if (!t) fail("the tokenizer has no chat tokens");
  const rows: Batch[] = [];
  let cut = 0;
  let tokens = 0;
  for (const { line, messages } of lines) {
    const onUnknown = (piece: string) => unencodable(`${file} line ${line}`, tokenizer, piece, vocabulary.hint);
    const { ids, assistant } = encodeChat(tokenizer, messages, onUnknown);
    if (ids.length > blockSize + 1) cut++;
    const row = chatExample(ids, assistant, blockSize, t.end);
    if (!row.y.some((v) => v >= 0)) continue; // the reply starts past the block: nothing to learn
    tokens += Math.min(ids.length, blockSize + 1);
    rows.push(row);
  }
  if (rows.length === 0)
    fail(
      `no conversation in ${file} has an assistant reply within the first ${blockSize} tokens; raise the block size or shorten the user turns`,
    );
  const nVal = rows.length >= 10 ? Math.round(rows.length * 0.1) : 0;
  const train = rows.slice(0, rows.length - nVal);
  const val = nVal > 0 ? rows.slice(rows.length - nVal) : train;
  const notes = [`${rows.length} conversations`];
  if (cut > 0) notes.push(`${cut} cut at ${blockSize + 1} tokens`);
  if (nVal === 0) notes.push("fewer than 10, so validation uses the training conversations");
  const share = (n: number) => Math.round((tokens * n) / rows.length);
  return {
    name: `${file} (chat: ${notes.join(", ")})`,
    tokenizer,
    trainTokens: share(train.length),
    valTokens: share(val.length),
    batchT: blockSize,
    trainSampler: (rng) => new ChatSampler(train, blockSize, batchSize, rng),
    valSampler: (rng) => new ChatSampler(val, blockSize, batchSize, rng),
    counting: false,
    specialTargets: specialTargets(
      tokenizer,
      rows.map((r) => r.y),
    ),
    addedPieces: added,
  };
}
