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

// A model slow enough on the plain TypeScript kernels (~3.2M parameters, a 1024-token context) that
// a request for 1,000 tokens is still being generated when the signal comes after its first chunk:
// a tiny model would have answered whole before it.
const slow = charModelFolder(join(tempDir("minigpt-serve-stop-slow-"), "slow"), "the sea and the whale.\n", {
  blockSize: 1024,
  nLayer: 4,
  nHead: 4,
  nEmbd: 256,
});

test("serve: SIGTERM while a request streams cuts it off, logs it as cut off by the server stopping, ends the client's stream and exits 0", async () => {
  const { url, cli } = await startServe(slow, ["--backend", "ref"]);
  started.push(cli);
  const r = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "slow", prompt: "the ", max_tokens: 1000, stream: true, seed: 1 }),
  });
  assert.equal(r.status, 200);
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let received = "";
  // the role chunk comes first, then text: wait for a chunk with text, so tokens were generated
  while (!/"text":"[^"]/.test(received)) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended before any text: ${received}`);
    received += decoder.decode(value, { stream: true });
  }
  cli.child.kill("SIGTERM");
  // the client's stream ends (cut: an error, or an end without [DONE]) rather than hanging
  const rest = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return "ended";
        received += decoder.decode(value, { stream: true });
      }
    } catch {
      return "cut";
    }
  })();
  const ended = await Promise.race([rest, new Promise((hung) => setTimeout(hung, 30_000, "still open after 30 s"))]);
  assert.ok(ended === "ended" || ended === "cut", `the client's stream: ${ended}`);
  assert.ok(!received.includes("[DONE]"), `the request finished before the signal: ${received.slice(-200)}`);
  const { status, signal } = await cli.exited;
  assert.equal(signal, null, `killed by ${signal}: ${cli.stderr()}`);
  assert.equal(status, 0, cli.stderr());
  const lines = cli.stderr().trim().split("\n");
  const logged = lines.find((line) => line.startsWith("POST /v1/completions"));
  assert.match(logged ?? "", /^POST \/v1\/completions 200 \(cut off: the server stopped\) 4\+(\d+) tokens \d+ ms$/, cli.stderr());
  // the tokens it generated before the stop are counted, in its line and in the last one
  const generated = Number(/4\+(\d+) tokens/.exec(logged ?? "")?.[1]);
  // each chunk with text has at least one token behind it (a char model: exactly one)
  const chunks = received.match(/"text":"[^"]/g)?.length ?? 0;
  assert.ok(generated >= chunks && generated < 1000, `${generated} tokens generated, ${chunks} chunks with text received: ${logged}`);
  assert.equal(lines.at(-1), `minigpt serve: stopped: served 1 request (${generated} token${generated === 1 ? "" : "s"} generated)`);
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
