/**
 * TextStreamer (src/generate/stream.ts): the text printed token by token, joined, is the text of the
 * whole sequence after its context, for the counting task's word tokenizer (words joined by spaces),
 * GPT-2's byte-level BPE (characters split across tokens) and a character tokenizer; no chunk shows
 * a replacement character; bytes that are not whole characters (sampled out of order, or a
 * generation that stops inside one) are left out, through the CLI too.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { TextStreamer } from "../src/generate/stream.js";
import { StopString } from "../src/generate/text.js";
import { Rng } from "../src/random.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { gpt2Tokenizer } from "../src/tokenizer/gpt2.js";
import type { Tokenizer } from "../src/tokenizer/types.js";
import { countingTokenizer } from "../src/tokenizer/word.js";
import { charModelFolder, runCli, startServe, tempDir } from "./helpers.js";

/** the chunks a streamer prints for `fresh` after `context` */
function stream(tok: Tokenizer, context: number[], fresh: number[]): string[] {
  const s = new TextStreamer(tok, context);
  const chunks = fresh.map((id) => s.push(id));
  assert.equal(s.text, chunks.join(""), "text is what was printed once every character is complete");
  assert.equal(s.finish(), "", "nothing is left once every character is complete");
  return chunks;
}

test("word tokenizer: the continuation of a prompt starts with the space between words", () => {
  const tok = countingTokenizer();
  const prompt = tok.encode("3 4 5");
  const chunks = stream(tok, prompt, tok.encode("6 7 8"));
  assert.deepEqual(chunks, [" 6", " 7", " 8"]);
  // without a context the first word has nothing before it
  assert.deepEqual(stream(tok, [], tok.encode("6 7")), ["6", " 7"]);
  // a long context: only its last ids are decoded again, with the same result
  const long = tok.encode(Array.from({ length: 60 }, (_, i) => String(i % 100)).join(" "));
  assert.deepEqual(stream(tok, long, tok.encode("60 61")), [" 60", " 61"]);
});

test("GPT-2 byte-level BPE: a character split over tokens is printed once, whole", () => {
  const tok = gpt2Tokenizer();
  const text = "Smile 🙂, café, 日本語 and 🤖🤖.";
  const ids = tok.encode(text);
  // the test needs a character that no single token completes
  assert.ok(
    ids.some((id) => tok.decode([id]).includes("\uFFFD")),
    "some token of the text ends inside a character",
  );
  for (const cut of [0, 1, 3, ids.length - 4]) {
    const context = ids.slice(0, cut);
    const chunks = stream(tok, context, ids.slice(cut));
    for (const c of chunks) assert.ok(!c.includes("\uFFFD"), `chunk ${JSON.stringify(c)} shows a replacement character`);
    const shown = tok.decode(context).replace(/\uFFFD+$/, "");
    assert.equal(shown + chunks.join(""), text, `cut at ${cut}`);
  }
  // a context that ends inside a character: the character is printed when the new ids complete it
  const cut = ids.findIndex((_, i) => tok.decode(ids.slice(0, i + 1)).endsWith("\uFFFD")) + 1;
  assert.ok(cut > 0 && tok.decode(ids.slice(0, cut)).endsWith("\uFFFD"));
  const chunks = stream(tok, ids.slice(0, cut), ids.slice(cut));
  assert.equal(tok.decode(ids.slice(0, cut)).replace(/\uFFFD+$/, "") + chunks.join(""), text);
  // a generation that stops inside a character: push holds it back, and it is never shown
  const partial = new TextStreamer(tok);
  const shown = ids
    .slice(0, cut)
    .map((id) => partial.push(id))
    .join("");
  assert.equal(partial.finish(), "", "the bytes of an unfinished character are left out, not shown as U+FFFD");
  assert.equal(shown, tok.decode(ids.slice(0, cut)).replace(/\uFFFD+$/, ""));
  // a replacement character that is really at the end of the prompt is not shown a second time
  assert.deepEqual(stream(tok, tok.encode("bad byte: \uFFFD"), tok.encode(" ok")).join(""), " ok");
});

test("bytes a model samples out of order are left out: no chunk shows U+FFFD or a lone surrogate", () => {
  const rng = new Rng(3);
  for (const tok of [gpt2Tokenizer(), CharTokenizer.fromText("ab")]) {
    const byteIds = new Map<number, number>();
    for (let id = 0; id < tok.vocabSize; id++) {
      const b = tok.tokenBytes(id);
      // GPT-2's first 256 tokens; the character tokenizer's byte fallback tokens <0x00>..<0xFF>
      if (b.length === 1 && (tok.kind === "gpt2" || /^<0x[0-9A-F]{2}>$/.test(tok.tokenString(id)))) byteIds.set(b[0] as number, id);
    }
    assert.equal(byteIds.size, 256, tok.kind);
    // whole characters between runs of random bytes (lead bytes, continuations, a surrogate's ED A0)
    const bytes = [...new TextEncoder().encode("é😀")];
    const someBytes = [0xc3, 0xa9, 0xe6, 0x97, 0xf0, 0x9f, 0xed, 0xa0, 0xff];
    for (let i = 0; i < 400; i++) bytes.push(rng.int(3) === 0 ? 0x61 : (someBytes[rng.int(someBytes.length)] as number));
    const ids = bytes.map((b) => byteIds.get(b) as number);
    const chunks = stream(tok, tok.encode("a"), ids);
    for (const c of chunks) assert.ok(!/\p{Cs}|\uFFFD/u.test(c), `${tok.kind}: chunk ${JSON.stringify(c)}`);
    const text = chunks.join("");
    assert.ok(text.startsWith("é😀") && text.includes("a"), text);
    // the characters that are whole are kept: the text is what TextDecoder makes, without its U+FFFDs
    assert.equal(text, new TextDecoder("utf-8", { ignoreBOM: true }).decode(Uint8Array.from(bytes)).replaceAll("\uFFFD", ""));
  }
});

test("a long generation decodes a bounded window a token, with the same text", () => {
  // the server pushes every row's token each step: decoding all ids so far made each push slower
  // than the last (a 1,000-token reply decoded ~500,000 ids)
  const gpt2 = gpt2Tokenizer();
  const decoded: number[] = [];
  const counting: Tokenizer = Object.assign(Object.create(gpt2) as Tokenizer, {
    decode(ids: readonly number[], options?: Parameters<Tokenizer["decode"]>[1]) {
      decoded.push(ids.length);
      return gpt2.decode(ids, options);
    },
  });
  const text = "Smile 🙂, café, 日本語 and 🤖🤖. ".repeat(40);
  const ids = gpt2.encode(text);
  assert.ok(ids.length > 500, `${ids.length} ids`);
  assert.equal(stream(counting, gpt2.encode("A prompt"), ids).join(""), text);
  assert.ok(Math.max(...decoded) <= 32, `a push decoded up to ${Math.max(...decoded)} ids`);
});

const untrained = () => charModelFolder(join(tempDir("minigpt-stream-"), "m"), "ab", { blockSize: 64, nLayer: 1, nHead: 1, nEmbd: 8 });

test("generate and chat on an untrained model with byte fallback print no U+FFFD", () => {
  const model = untrained();
  const gen = runCli(["generate", "--model", model, "--max-new-tokens", "60", "--temperature", "1", "--backend", "ref"]);
  assert.equal(gen.status, 0, gen.stderr);
  const chat = runCli(["chat", "--model", model, "--max-new-tokens", "30", "--temperature", "1", "--backend", "ref"], {
    input: "ab\nba\n/quit\n",
  });
  assert.equal(chat.status, 0, chat.stderr);
  for (const [what, out] of [
    ["generate", gen.stdout],
    ["chat", chat.stdout],
  ] as const) {
    // 256 of the 262 tokens are bytes: the model samples many that are not whole characters
    assert.ok(!out.includes("\uFFFD"), `${what} printed U+FFFD: ${JSON.stringify(out)}`);
  }
  assert.ok(gen.stdout.length > 10, gen.stdout);
});

test("serve's text, streamed or not, has no U+FFFD from the same model", async () => {
  const { url, cli } = await startServe(untrained(), ["--backend", "ref"]);
  try {
    for (const stream of [false, true]) {
      const body = JSON.stringify({ model: "m", prompt: "ab", max_tokens: 60, temperature: 1, seed: 3, stream });
      const r = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      assert.equal(r.status, 200);
      // the JSON (each event's, streamed) decoded: its text, with any \ufffd escape read as the character
      const texts = (
        stream
          ? (await r.text())
              .split("\n")
              .filter((l) => l.startsWith("data: {"))
              .map((l) => l.slice(6))
          : [await r.text()]
      )
        .map((j) => (JSON.parse(j) as { choices: { text: string }[] }).choices[0]?.text ?? "")
        .join("");
      assert.ok(texts.length > 10 && !texts.includes("\uFFFD"), `stream ${stream}: ${JSON.stringify(texts)}`);
    }
  } finally {
    cli.child.kill("SIGTERM");
    await cli.exited;
  }
});

test("character tokenizer: one character a token, nothing added between them", () => {
  const tok = CharTokenizer.fromText("Call me Ishmael.");
  assert.deepEqual(stream(tok, tok.encode("Call"), tok.encode(" me")), [" ", "m", "e"]);
});

test("StopString: the text up to the stop string, whatever the pieces, without it unless asked", () => {
  const text = "one two th|ree, three two one";
  for (const [stop, want] of [
    ["three", "one two th|ree, "],
    ["th|r", "one two "],
    ["four", text],
    ["one", ""],
  ] as const) {
    // every way to cut the text into two pieces, and one character at a time
    const cuts = [...Array.from({ length: text.length + 1 }, (_, i) => [text.slice(0, i), text.slice(i)]), [...text]];
    for (const pieces of cuts) {
      for (const include of [false, true]) {
        const s = new StopString(stop, include);
        let shown = "";
        for (const p of pieces) {
          const out = s.push(p);
          // what is shown is never taken back: it is a prefix of the answer
          shown += out;
          assert.ok((include && want !== text ? want + stop : want).startsWith(shown), `${stop} ${JSON.stringify(pieces)}: ${shown}`);
        }
        shown += s.finish();
        assert.equal(shown, include && want !== text ? want + stop : want, `${stop} ${JSON.stringify(pieces)} include ${include}`);
      }
    }
  }
});
