/**
 * A newcomer's first run, as README's Quick start writes it: its commands in order (train, generate,
 * the chat fine-tune of that model on examples/chats.jsonl, chat, eval, attention, analyze on a
 * checkpoint), read from README.md itself, each through the real CLI, each exiting 0 with the output
 * it promises. The install (`npm install`, which CI runs first) and the alias are not rerun here;
 * `minigpt` runs from source. What differs from a user's run is only what keeps the test short: the
 * training runs take a few steps, generate and eval do less, and the checkpoint analyzed is the last one.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, tempDir } from "./helpers.js";

const STEPS = 3;

/** the sh blocks of README's Quick start that make the newcomer's path: set-up, then chat and the tools */
function quickStartCommands(): string[][] {
  const readme = readFileSync("README.md", "utf8");
  const start = readme.indexOf("## Quick start\n");
  assert.ok(start >= 0, "README.md has no Quick start");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string).slice(0, 2);
  const lines = blocks.join("").split("\n");
  assert.ok(lines[0]?.startsWith("npm install"), `the set-up starts with npm install, not ${lines[0]}`);
  assert.match(blocks[0] as string, /^alias minigpt="node \$PWD\/bin\/minigpt\.js"/m);
  // a real shell splits each command (quotes, comments) as the user's does
  return lines
    .filter((l) => l.startsWith("minigpt "))
    .map((l) => {
      const sh = spawnSync("sh", ["-c", `printf '%s\\0' ${l}`], { encoding: "utf8" });
      assert.equal(sh.status, 0, sh.stderr);
      return sh.stdout.split("\0").slice(1, -1);
    });
}

/** what keeps a command short, and what each must show; `waitsFor`: a helper's work not yet on main */
interface Step {
  extra?: string[];
  input?: string;
  check(stdout: string, stderr: string, dir: string): void;
  waitsFor?: string;
}

function stepFor(args: string[]): Step {
  const [command] = args;
  if (command === "train" && args.includes("--chat"))
    return {
      extra: ["--max-steps", String(STEPS), "--eval-steps", "1"],
      check: (_, err) => {
        assert.match(err, new RegExp(`done: ${STEPS} steps`));
        assert.match(err, /next: minigpt chat --model chat-model/);
        // the sums' characters Moby Dick lacks join the character model's vocabulary
        assert.match(err, /^vocabulary: added \d+ characters the data needs \(.*"\+".*"="/m);
      },
    };
  if (command === "train")
    return {
      extra: ["--max-steps", String(STEPS), "--eval-steps", "2", "--sample-tokens", "40"],
      check: (out, err) => {
        assert.match(err, /^config: .*--data moby-dick /m);
        assert.match(err, new RegExp(`done: ${STEPS} steps`));
        assert.ok(out.trim().length > 0, "a sample of text");
      },
    };
  if (command === "generate") return { extra: ["--max-new-tokens", "40"], check: (out) => assert.match(out, /^Call me.{10,}/s) };
  if (command === "chat")
    return {
      input: "What is 2+2?\n",
      check: (out) => assert.ok(out.trim().length > 0, "a reply"),
    };
  if (command === "eval")
    return {
      extra: ["--eval-tokens", "2000"],
      check: (out) => assert.match(out, /loss \d+\.\d+/),
    };
  if (command === "attention")
    return {
      check: (_, __, dir) => assert.ok(statSync(join(dir, args[args.indexOf("--out") + 1] as string)).size > 1000, "an HTML page"),
    };
  if (command === "analyze") return { check: (out) => assert.match(out, /parameters/) };
  throw new Error(`README's Quick start runs minigpt ${command}, which this test does not know how to check`);
}

test("README's Quick start, command by command, from a fresh folder", (t) => {
  const dir = tempDir("minigpt-quickstart-");
  cpSync("examples", join(dir, "examples"), { recursive: true });
  const commands = quickStartCommands();
  assert.deepEqual(
    commands.map((a) => a[0]),
    ["train", "generate", "train", "chat", "eval", "attention", "analyze"],
  );
  for (const readmeArgs of commands) {
    // the checkpoint of a full run is the last of this short one's
    const args = readmeArgs.map((a) => a.replace(/checkpoint-\d+$/, `checkpoint-${STEPS}`));
    const step = stepFor(args);
    const shown = `minigpt ${readmeArgs.join(" ")}`;
    if (step.waitsFor) {
      t.diagnostic(`skipped until ${step.waitsFor} lands: ${shown}`);
      continue;
    }
    const r = runCli([...args, ...(step.extra ?? [])], { cwd: dir, input: step.input });
    assert.equal(r.status, 0, `${shown}\n${r.stderr}`);
    step.check(r.stdout, r.stderr, dir);
  }
});

test("set-up: a name npm could publish, the minigpt command, every install script decided, no npx in README", () => {
  const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
    name: string;
    bin: Record<string, string>;
    allowScripts?: Record<string, boolean>;
  };
  // npm's `minigpt` is another package (a security holding package): ours must not claim that name
  assert.notEqual(pkg.name, "minigpt");
  assert.deepEqual(Object.keys(pkg.bin), ["minigpt"]);
  // every dependency with an install script is approved or denied, so npm install does not warn
  const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
    name: string;
    packages: Record<string, { hasInstallScript?: boolean }>;
  };
  assert.equal(lock.name, pkg.name);
  const scripted = Object.entries(lock.packages)
    .filter(([, p]) => p.hasInstallScript)
    .map(([path]) => path.replace(/^.*node_modules\//, ""));
  for (const name of scripted)
    assert.ok(name in (pkg.allowScripts ?? {}), `${name} has an install script that allowScripts does not decide`);
  // npx or npm exec outside the clone would fetch npm's minigpt; inside it, rebuild the folder silently
  for (const file of ["README.md", ...["architecture", "learning"].map((d) => `docs/${d}.md`)]) {
    const text = readFileSync(file, "utf8");
    assert.doesNotMatch(text, /^\s*(npx|npm exec) minigpt/m, file);
    assert.doesNotMatch(text, /from "minigpt(\/browser)?"/, `${file} imports the package by a name that is not ours`);
  }
});
