/**
 * `--model model.zip`: a model folder zipped (as the web page downloads it, or by `zip -r` of the
 * folder) loads in every command that takes --model, giving what the folder gives; a zip that is not
 * a model folder, or a file that is not a zip, is one line naming it.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { zipSync } from "fflate";
import { loadModelFolder } from "../src/io/folder.js";
import { MODEL_FILE_NAMES, modelFiles, zipModelFiles } from "../src/io/model-zip.js";
import { runCli, tempDir, wordCorpus } from "./helpers.js";

const root = tempDir("minigpt-zip-");
const out = join(root, "model");
const trained = runCli([
  "train",
  ...["--data", wordCorpus(root), "--out", out, "--max-steps", "3", "--n-layer", "1", "--n-head", "2", "--n-embd", "16"],
  ...["--block-size", "16", "--batch-size", "4", "--eval-steps", "1", "--warmup-steps", "0", "--sample-tokens", "0"],
]);
const folderFiles = () => Object.fromEntries(MODEL_FILE_NAMES.map((n) => [n, new Uint8Array(readFileSync(join(out, n)))]));

/** the page's zip: the model's files at the top */
function pageZip(): string {
  const file = join(root, "page.zip");
  writeFileSync(file, zipModelFiles(folderFiles()));
  return file;
}

const greedy = (model: string) =>
  runCli(["generate", "--model", model, "--prompt", "the whale", "--temperature", "0", "--max-new-tokens", "40"]);

test("generate, analyze, eval and tokenize take a model zip and give what the folder gives", () => {
  assert.equal(trained.status, 0, trained.stderr);
  const zip = pageZip();
  const fromFolder = greedy(out);
  const fromZip = greedy(zip);
  assert.equal(fromZip.status, 0, fromZip.stderr);
  assert.equal(fromZip.stdout, fromFolder.stdout);
  const analyzed = runCli(["analyze", "--model", zip, "--json"]);
  assert.equal(analyzed.status, 0, analyzed.stderr);
  assert.equal(
    (JSON.parse(analyzed.stdout) as { parameters: { total: number } }).parameters.total,
    (JSON.parse(runCli(["analyze", "--model", out, "--json"]).stdout) as { parameters: { total: number } }).parameters.total,
  );
  const evaluated = runCli(["eval", "--model", zip, "--json"]);
  assert.equal(evaluated.status, 0, evaluated.stderr);
  assert.equal(evaluated.stdout, runCli(["eval", "--model", out, "--json"]).stdout);
  const tokenized = runCli(["tokenize", "--model", zip, "the sea"]);
  assert.equal(tokenized.status, 0, tokenized.stderr);
  assert.equal(tokenized.stdout, runCli(["tokenize", "--model", out, "the sea"]).stdout);
});

test("tokenizer_config.json's model_max_length is the model's context (16), in the folder and in the page's zip", () => {
  assert.equal(trained.status, 0, trained.stderr);
  const maxLength = (bytes: Uint8Array | undefined) => JSON.parse(Buffer.from(bytes ?? []).toString("utf8")).model_max_length;
  assert.equal(maxLength(readFileSync(join(out, "tokenizer_config.json"))), 16);
  const { model, tokenizer } = loadModelFolder(out);
  assert.equal(maxLength(modelFiles(model, tokenizer)["tokenizer_config.json"]), 16);
  model.dispose();
});

test("a zip of the whole folder (one folder inside, training files too) loads as well", () => {
  const files: Record<string, Uint8Array> = {};
  for (const [name, bytes] of Object.entries(folderFiles())) files[`model/${name}`] = bytes;
  files["model/metrics.jsonl"] = new Uint8Array(readFileSync(join(out, "metrics.jsonl")));
  const zip = join(root, "folder.zip");
  writeFileSync(zip, zipSync(files));
  const r = greedy(zip);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, greedy(out).stdout);
});

test("a file that is not a zip, and a zip without a model, are one line naming the file", () => {
  const notZip = join(root, "notes.txt");
  writeFileSync(notZip, "just some text\n");
  const r1 = greedy(notZip);
  assert.equal(r1.status, 1);
  assert.match(r1.stderr.trim(), /^minigpt generate: .*notes\.txt is not a model folder zip: it is not a zip file at all/);
  assert.equal(r1.stderr.trim().split("\n").length, 1, r1.stderr);
  const empty = join(root, "photos.zip");
  writeFileSync(empty, zipSync({ "cat.jpg": new Uint8Array([1, 2, 3]) }));
  const r2 = greedy(empty);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr.trim(), /photos\.zip is not a model folder zip: it has no config\.json, model\.safetensors, tokenizer\.json/);
  assert.equal(r2.stderr.trim().split("\n").length, 1, r2.stderr);
  const cut = join(root, "cut.zip");
  writeFileSync(cut, readFileSync(pageZip()).subarray(0, 200));
  const r3 = greedy(cut);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr.trim(), /cut\.zip is not a model folder zip/);
  assert.equal(r3.stderr.trim().split("\n").length, 1, r3.stderr);
});
