/**
 * Generated text on a terminal (src/cli/terminal-text.ts): the control characters a model samples
 * are shown as control pictures instead of being obeyed by the terminal; a pipe gets the text as
 * generated. Through the real CLI on a pseudo-terminal.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { visibleControls } from "../src/cli/terminal-text.js";
import { charModelFolder, runCli, runInTerminal, SCRIPT, tempDir } from "./helpers.js";

// biome-ignore lint/suspicious/noControlCharactersInRegex: what the test looks for
const OBEYED = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/;

test("visibleControls: C0 controls as their pictures, DEL as ␡, C1 as \\x..; tab, newline and carriage return kept", () => {
  assert.equal(visibleControls("a\x1b[31mb\x0ec\x08\x7f\x9b\x00"), "a␛[31mb␎c␈␡\\x9b␀");
  assert.equal(visibleControls("line\tone\r\nline two\n"), "line\tone\r\nline two\n");
  assert.equal(visibleControls("é 😀 ␛"), "é 😀 ␛");
});

test("generate on a terminal shows the control characters an untrained model samples; a pipe gets them as they are", async (t) => {
  if (!SCRIPT) return t.skip("no script command (util-linux) to make a pseudo-terminal");
  // 256 of the 262 tokens are bytes, 32 of them C0 controls: 200 tokens hold several
  const model = charModelFolder(join(tempDir("minigpt-terminal-"), "m"), "ab", { blockSize: 64, nLayer: 1, nHead: 1, nEmbd: 8 });
  const args = ["generate", "--model", model, "--prompt", "ab", "--max-new-tokens", "200", "--temperature", "1", "--backend", "ref"];
  const piped = runCli(args);
  assert.equal(piped.status, 0, piped.stderr);
  assert.match(piped.stdout, OBEYED, "the sample has control characters");
  const shown = await runInTerminal(args, []);
  assert.equal(shown.status, 0, shown.output);
  assert.doesNotMatch(shown.output, OBEYED, JSON.stringify(shown.output));
  assert.match(shown.output, /[\u2400-\u241f\u2421]/);
  // the same text otherwise (the terminal ends lines with \r\n)
  assert.equal(shown.output.replace(/\r\n/g, "\n"), visibleControls(piped.stdout.replace(/\r\n/g, "\n")));
});
