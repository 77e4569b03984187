#!/usr/bin/env node
// The `minigpt` command: the compiled CLI in dist/, which `npm run build` makes (npm install runs it).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/src/cli/entry.js", import.meta.url);
if (!existsSync(entry)) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  console.error(`minigpt: the CLI is not built (no ${fileURLToPath(entry)}): run npm run build in ${root} (npm install runs it)`);
  process.exit(1);
}
await import(entry.href);
