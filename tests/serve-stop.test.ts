// minigpt serve (and web, the playground's server) stopped as an operator stops it (Ctrl-C in its
// terminal, SIGINT; or SIGTERM from a service manager): it closes and exits 0 with one last line that
// says it stopped (serve: and what it served), so that the end of its log tells a stop from a crash.
// A signal just after the line that says it listens is such a stop too, not node's default death.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { charModelFolder, type StartedCli, startCli, startServe, tempDir } from "./helpers.js";

const model = charModelFolder(join(tempDir("minigpt-serve-stop-"), "tiny"), "the sea and the whale.\n", {
  blockSize: 32,
  nLayer: 1,
  nHead: 2,
  nEmbd: 16,
});

const started: StartedCli[] = [];
// a failed test must not leave its server holding the test file open
after(() => {
  for (const cli of started) if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
});

for (const signal of ["SIGINT", "SIGTERM"] as const)
  test(`serve: ${signal} closes the server, exits 0 and ends with 'stopped: served N requests'`, async () => {
    const { url, cli } = await startServe(model);
    started.push(cli);
    // one completion of exactly 3 tokens (no stop token in a char model without specials) when asked
    const requests = signal === "SIGINT" ? 1 : 0;
    if (requests === 1) {
      const r = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny", prompt: "the ", max_tokens: 3, seed: 1 }),
      });
      const body = await r.text();
      assert.equal(r.status, 200, body);
      assert.ok(await cli.seen(/POST \/v1\/completions 200/), cli.stderr());
    }
    cli.child.kill(signal);
    const { status, signal: killedBy } = await cli.exited;
    assert.equal(killedBy, null, `killed by ${killedBy}: ${cli.stderr()}`);
    assert.equal(status, 0, cli.stderr());
    const lines = cli.stderr().trim().split("\n");
    const expected = requests === 1 ? "served 1 request (3 tokens generated)" : "served 0 requests (0 tokens generated)";
    assert.equal(lines.at(-1), `minigpt serve: stopped: ${expected}`, cli.stderr());
  });

const builtPage = join(dirname(dirname(fileURLToPath(import.meta.url))), "dist/web/index.html");
test(
  "web: SIGTERM just after it listens closes it, exits 0 and ends with 'stopped'",
  { skip: !existsSync(builtPage) && "the playground is not built (npm run build)" },
  async () => {
    const cli = startCli(["web", "--port", "0"]);
    started.push(cli);
    assert.ok(await cli.seen(/playground is at http/), cli.stderr());
    cli.child.kill("SIGTERM");
    const { status, signal } = await cli.exited;
    assert.equal(signal, null, `killed by ${signal}: ${cli.stderr()}`);
    assert.equal(status, 0, cli.stderr());
    assert.equal(cli.stderr().trim().split("\n").at(-1), "minigpt web: stopped", cli.stderr());
  },
);
