import { isIP } from "node:net";
import { type ContextOverflow, startServer } from "../index.js";
import { chooseBackend } from "./backend.js";
import { deviceBackendFlags, failListen, modelFlag } from "./common.js";
import { counted } from "./counted.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { untilStopAsked } from "./interrupt.js";

export const serveSpec: CommandSpec = {
  name: "serve",
  summary: "serve a model over HTTP with an OpenAI-compatible API (/v1/chat/completions, /v1/completions)",
  usage: "minigpt serve --model DIR [--host 127.0.0.1] [--port 8080] [--api-key KEY] [flags]",
  flags: [
    modelFlag("model folder to serve (its name is the model id)"),
    {
      name: "host",
      type: "string",
      default: "127.0.0.1",
      help: "address to listen on (127.0.0.1 = this machine only; 0.0.0.0 = every network)",
    },
    { name: "port", type: "int", default: 8080, min: 0, max: 65535, help: "port to listen on (0 = any free port)" },
    { name: "api-key", type: "string", default: "", help: "require Authorization: Bearer KEY on every request (or set MINIGPT_API_KEY)" },
    {
      name: "max-batch",
      type: "int",
      default: 8,
      min: 1,
      max: 256,
      help: "requests decoded together: each step adds one token to every one of them",
    },
    {
      name: "max-queue",
      type: "int",
      default: 64,
      min: 0,
      help: "requests waiting beyond --max-batch before new ones get 429 Too Many Requests",
    },
    {
      name: "timeout",
      type: "float",
      default: 600,
      min: 0,
      help: "seconds a request may take before it is stopped with 504 (0 = no limit)",
    },
    { name: "header-timeout", type: "float", default: 10, above: 0, help: "seconds a client has to send its request headers" },
    { name: "body-timeout", type: "float", default: 30, above: 0, help: "seconds a client has to send its request body (408 after)" },
    {
      name: "cors",
      type: "string",
      default: "",
      help: "allow browser pages from this origin (e.g. http://localhost:3000) to call the API; off by default",
    },
    {
      name: "context-overflow",
      type: "string",
      default: "refuse",
      choices: ["refuse", "truncate"],
      help: "a prompt that leaves no room for max_tokens: refuse (400 context_length_exceeded) or keep its end (said in the answer's warning)",
    },
    ...deviceBackendFlags,
  ],
  // the generation thread loads the kernels (src/server/worker.ts); the HTTP thread needs none
  backendElsewhere: true,
  examples: [
    "minigpt serve --model chat-model",
    'curl http://127.0.0.1:8080/v1/chat/completions -H "content-type: application/json" -d \'{"model":"chat-model","messages":[{"role":"user","content":"hi"}]}\'',
  ],
};

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
}

export async function runServe(argv: readonly string[]): Promise<number> {
  const f = parseFlags(serveSpec, argv);
  const apiKey = f.string("api-key") || process.env.MINIGPT_API_KEY || undefined;
  const host = f.string("host");
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const backend = await chooseBackend(f, serveSpec.flags.find((flag) => flag.name === "backend")?.choices ?? []);
  const port = f.int("port");
  // listening for Ctrl-C/SIGTERM before loading: one that comes while the model loads stops the
  // server once it is up, with its last line
  const { stopped, forget } = untilStopAsked();
  const running = await startServer({
    model: f.string("model"),
    host,
    port,
    apiKey,
    maxBatch: f.int("max-batch"),
    maxQueue: f.int("max-queue"),
    timeout: f.float("timeout"),
    headerTimeout: f.float("header-timeout"),
    bodyTimeout: f.float("body-timeout"),
    cors: f.string("cors") || undefined,
    contextOverflow: f.string("context-overflow") as ContextOverflow,
    backend,
    threads: f.int("threads") || undefined,
    log,
  }).catch((err: unknown) => {
    forget();
    const syscall = (err as NodeJS.ErrnoException).syscall;
    if (syscall === "listen" || syscall === "getaddrinfo") failListen(err, host, port);
    throw err;
  });
  if (!isLoopback(host) && apiKey === undefined)
    log(`warning: listening on ${host} without --api-key: anyone who can reach this machine can use the model`);
  log(`minigpt serve: ${running.model.id} (${running.model.blockSize}-token context) on ${running.url}/v1 (Ctrl-C stops)`);
  await stopped;
  await running.close();
  // the last line, so that the terminal (or the log) shows the server ended as asked, not crashed
  const { requests, completionTokens } = running.served();
  log(`minigpt serve: stopped: served ${counted(requests, "request")} (${counted(completionTokens, "token")} generated)`);
  return 0;
}
