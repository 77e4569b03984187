// Library messages that name settings: the library words them with the settings' own names, the CLI
// with its flags (src/wording.ts, src/cli/wording.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
import test from "node:test";
import { errorText, inFlags } from "../src/cli/wording.js";
import { MinigptError } from "../src/errors.js";
import { defaultTrainConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";
import { said, setting } from "../src/wording.js";
import { tempDir, wordCorpus } from "./helpers.js";

test("a message naming settings reads with config names in the library and with flags in the CLI", () => {
  const inner = said`give ${setting("initPartial")}`;
  const message = said`${setting("minLr")} 0.1 is above ${setting("lr")} 0.01; ${inner}`;
  assert.equal(String(message), "minLr 0.1 is above lr 0.01; give initPartial");
  assert.equal(inFlags(message), "--min-lr 0.1 is above --lr 0.01; give --init-partial");
  assert.equal(inFlags("plain text"), "plain text");
});

test("train() refuses a bad setting in the library's words; the CLI's words for it are the flags", async () => {
  const dir = tempDir("minigpt-wording-");
  const config = { ...defaultTrainConfig, data: wordCorpus(dir), out: join(dir, "out"), minLr: 0.1, lr: 0.01, maxSteps: 1 };
  await assert.rejects(train(config), (err: unknown) => {
    assert.ok(err instanceof MinigptError);
    assert.match(err.message, /^minLr 0\.1 is above lr 0\.01: /);
    assert.doesNotMatch(err.message, /--/);
    assert.match(errorText(err), /^--min-lr 0\.1 is above --lr 0\.01: /);
    return true;
  });
});
