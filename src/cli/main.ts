/** `minigpt <command> [flags]`: dispatch, backend selection, and one-line errors. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GpuReadError, isOutOfMemory, MinigptError, outOfMemory } from "../index.js";
import { analyzeSpec, runAnalyze } from "./analyze.js";
import { attentionSpec, runAttention } from "./attention.js";
import { selectBackend } from "./backend.js";
import { chatSpec, runChat } from "./chat.js";
import { evalSpec, runEval } from "./eval.js";
import { explainStepSpec, runExplainStep } from "./explain.js";
import { type CommandSpec, helpText, nearest, parseFlags } from "./flags.js";
import { generateSpec, runGenerate } from "./generate.js";
import { interactiveSpec, runInteractive } from "./interactive.js";
import { mergeSpec, runMerge } from "./merge.js";
import { quantizeSpec, runQuantize } from "./quantize.js";
import { runSelftest, selftestSpec } from "./selftest.js";
import { runServe, serveSpec } from "./serve.js";
import { runTokenize, tokenizeSpec } from "./tokenize.js";
import { runTokenizer, tokenizerSpec } from "./tokenizer.js";
import { runTrain, trainSpec } from "./train.js";
import { runWeb, webSpec } from "./web.js";
import { errorText } from "./wording.js";

interface Command {
  spec: CommandSpec;
  run(argv: readonly string[]): Promise<number>;
}

const commands: Command[] = [
  { spec: trainSpec, run: runTrain },
  { spec: generateSpec, run: runGenerate },
  { spec: evalSpec, run: runEval },
  { spec: tokenizeSpec, run: runTokenize },
  { spec: tokenizerSpec, run: runTokenizer },
  { spec: selftestSpec, run: runSelftest },
  { spec: chatSpec, run: runChat },
  { spec: serveSpec, run: runServe },
  { spec: analyzeSpec, run: runAnalyze },
  { spec: quantizeSpec, run: runQuantize },
  { spec: mergeSpec, run: runMerge },
  { spec: explainStepSpec, run: runExplainStep },
  { spec: attentionSpec, run: runAttention },
  { spec: interactiveSpec, run: runInteractive },
  { spec: webSpec, run: runWeb },
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.spec.name.length)) + 2;
  return [
    "minigpt: a GPT you can train on your own text, in TypeScript",
    "",
    "usage: minigpt <command> [flags]     (minigpt <command> --help, or minigpt help <command>, for its flags)",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.spec.name.padEnd(width)} ${c.spec.summary}`),
    "",
    'start with:  minigpt train   then   minigpt generate --model out --prompt "..."   (or just: minigpt, for menus)',
  ].join("\n");
}

/** the npm package's name (the command stays minigpt: that npm name belongs to another package) */
const PACKAGE_NAME = "minigpt-ts";

/**
 * minigpt's version, from the package.json above this file (src/cli/ under tsx, dist/src/cli/ when
 * built; installed packages keep package.json at their root).
 */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++, dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (!existsSync(file)) continue;
    let pkg: { name?: string; version?: string };
    try {
      pkg = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      continue; // unreadable or not JSON: not ours
    }
    if (pkg.name === PACKAGE_NAME && typeof pkg.version === "string") return pkg.version;
  }
  return "(unknown version: package.json not found)";
}

export async function main(argv: readonly string[]): Promise<number> {
  // no arguments: interactive mode (menus on a terminal; scriptable through a pipe)
  if (argv.length === 0) return main(["interactive"]);
  // `npm exec minigpt -- --help` (npm exec keeps a bare --help for itself) may pass the "--" on
  if (argv[0] === "--") return main(argv.slice(1));
  const [name, ...rest] = argv;
  // `minigpt help train`, as git and npm take it: that command's --help
  if (name === "help" && rest[0] !== undefined) return main([rest[0], "--help"]);
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  if (name === "--version") {
    console.log(`minigpt ${packageVersion()}`);
    return 0;
  }
  const command = commands.find((c) => c.spec.name === name);
  if (!command && name.startsWith("-")) {
    // another tool's habit (main.py --mode train, minillm.py --train --steps 500): say where the command goes
    const isCommand = (word: string) => commands.some((c) => c.spec.name === word);
    const meant = [name.replace(/^-+/, ""), ...rest].find(isCommand);
    console.error(
      `minigpt: the command comes first, then its flags (minigpt <command> [flags])${meant ? `: did you mean "minigpt ${meant} ..."?` : `, not ${name}`}; minigpt --help lists the commands`,
    );
    return 1;
  }
  if (!command) {
    const near = nearest(
      name,
      commands.map((c) => c.spec.name),
    );
    console.error(`minigpt: unknown command "${name}"${near ? ` (did you mean "${near}"?)` : ""}; minigpt --help lists the commands`);
    return 1;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(helpText(command.spec));
    return 0;
  }
  try {
    // flags are checked before the backend starts its threads (--threads 100000 is a typo, not a request)
    const backendFlag = command.spec.flags.find((f) => f.name === "backend");
    if (backendFlag && !command.spec.backendElsewhere) await selectBackend(parseFlags(command.spec, rest), backendFlag.choices ?? []);
    return await command.run(rest);
  } catch (err) {
    if (err instanceof MinigptError) {
      console.error(`minigpt ${name}: ${errorText(err)}`);
      return 1;
    }
    if (err instanceof GpuReadError) {
      console.error(
        `minigpt ${name}: this reads the model's values on the CPU and does not run on the webgpu backend yet; use --backend wasm`,
      );
      return 1;
    }
    // out of tensor memory where the command named no setting that shrinks it (train, eval and serve
    // name theirs): the model itself, with what the command holds for it (generate's and chat's KV
    // cache is the model's block), does not fit
    if (isOutOfMemory(err)) {
      const said = outOfMemory(err, `The model is too big for ${name} here: use a smaller one`) as MinigptError;
      console.error(`minigpt ${name}: ${said.message}`);
      return 1;
    }
    throw err;
  }
}
