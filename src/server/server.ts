/**
 * An OpenAI-compatible HTTP API for one model folder, on node:http:
 *
 *   GET  /health                 {"status":"ok", ...}
 *   GET  /v1/models              the one model (its id is the folder's name)
 *   POST /v1/completions         text completion, streamed (server-sent events) or not
 *   POST /v1/chat/completions    chat with the model's template (src/data/chat.ts)
 *
 * The model lives on a worker thread (worker.ts, engine.ts); this thread only parses, admits and
 * writes. Safety: a 1 MiB body limit, header and body timeouts (a slow client cannot hold a
 * connection), a per-request time limit, Bearer keys compared in constant time, no files served,
 * CORS off unless an origin is named. Every error is OpenAI's {"error": {...}} with its status.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, resolve } from "node:path";
import type { BackendName } from "../kernels/index.js";
import { ApiError } from "./api-error.js";
import type { ContextOverflow, EngineEvent, ModelInfo, Started } from "./engine.js";
import { type GenerationRequest, parseGenerationRequest } from "./params.js";
import { ChoiceText, ChunkWriter, completionBody, responseId, usage } from "./responses.js";
import { GenerationWorker, RETRY_AFTER_S } from "./worker-client.js";

const MAX_BODY_BYTES = 1024 * 1024;

export interface ServerOptions {
  /** the model folder (or one of its checkpoints) */
  model: string;
  /** default 127.0.0.1 (this machine only) */
  host?: string;
  /** default 8080; 0 = any free port (see RunningServer.port) */
  port?: number;
  /** when set, every request needs `Authorization: Bearer <apiKey>` */
  apiKey?: string;
  /** requests decoded together (default 8) */
  maxBatch?: number;
  /** requests waiting for the batch before new ones get 429 (default 64) */
  maxQueue?: number;
  /** seconds a request may take in all, 0 = no limit (default 600) */
  timeout?: number;
  /** seconds to receive a request's headers (default 10) */
  headerTimeout?: number;
  /** seconds to receive a request's body (default 30) */
  bodyTimeout?: number;
  /** the origin allowed to call from a browser page (default: none, CORS off) */
  cors?: string;
  /** a prompt that leaves no room for max_tokens: refuse (400, the default) or cut its start */
  contextOverflow?: ContextOverflow;
  /**
   * kernels of the generation thread: webgpu (a GPU; its steps' logits read back asynchronously),
   * wasm, ref, or auto (the default: wasm when available, else ref; the CLI's auto also takes a
   * hardware GPU adapter, after probing for one in a child process)
   */
  backend?: BackendName | "auto";
  threads?: number;
  /** one line per request (method, path, status, tokens, ms); default: none */
  log?: (line: string) => void;
  /** lines about the model folder while loading (default stderr) */
  notice?: (text: string) => void;
}

export interface RunningServer {
  server: Server;
  model: ModelInfo;
  host: string;
  port: number;
  /** http://host:port */
  url: string;
  /** what the server has answered so far: requests (each one logged, those cut off by close included) and the tokens it generated */
  served(): { requests: number; completionTokens: number };
  /** stop listening, end the connections still open (their requests cut off) and the generation thread */
  close(): Promise<void>;
}

/** what one request's log line reports */
interface LogTokens {
  prompt: number;
  completion: number;
}

/** Load the model on a worker thread and listen; resolves once requests can be answered. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const o = {
    host: "127.0.0.1",
    port: 8080,
    maxBatch: 8,
    maxQueue: 64,
    timeout: 600,
    headerTimeout: 10,
    bodyTimeout: 30,
    contextOverflow: "refuse" as ContextOverflow,
    backend: "auto" as const,
    log: () => {},
    notice: (text: string) => console.error(text),
    ...options,
  };
  const worker = await GenerationWorker.start(
    { dir: o.model, id: basename(resolve(o.model)), contextOverflow: o.contextOverflow, backend: o.backend, threads: o.threads },
    { maxBatch: o.maxBatch, maxQueue: o.maxQueue },
    o.notice,
  );
  const served = { requests: 0, completionTokens: 0 };
  // set by close(): a request it cuts off is logged as stopped by the server, not as left by its client
  let closing = false;
  const keyDigest = o.apiKey === undefined ? null : createHash("sha256").update(o.apiKey).digest();
  const headerMs = o.headerTimeout * 1000;
  const server = createServer(
    {
      headersTimeout: headerMs,
      // the body has its own limit (readBody); 0 here, as node requires headersTimeout <= requestTimeout
      requestTimeout: 0,
      // how often node looks for connections past headersTimeout (its default, 30 s, would let a slow client stay that long)
      connectionsCheckingInterval: Math.max(100, Math.min(1000, headerMs / 4)),
    },
    (req, res) => {
      const started = performance.now();
      const tokens: LogTokens = { prompt: 0, completion: 0 };
      res.on("close", () => {
        // prompt+completion tokens only for a request that had some (not /health, /v1/models or an error)
        const t = tokens.prompt + tokens.completion > 0 ? ` ${tokens.prompt}+${tokens.completion} tokens` : "";
        const status = res.writableFinished
          ? String(res.statusCode)
          : `${res.statusCode} (${closing ? "cut off: the server stopped" : "client left"})`;
        served.requests++;
        served.completionTokens += tokens.completion;
        o.log(`${req.method} ${req.url?.split("?")[0]} ${status}${t} ${Math.round(performance.now() - started)} ms`);
      });
      if (o.cors) {
        res.setHeader("access-control-allow-origin", o.cors);
        res.setHeader("vary", "origin");
      }
      handle(req, res, tokens).catch((e: unknown) => {
        const error =
          e instanceof ApiError ? e : new ApiError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, "server_error");
        sendError(res, error);
      });
    },
  );

  async function handle(req: IncomingMessage, res: ServerResponse, tokens: LogTokens): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] as string;
    if (req.method === "OPTIONS" && o.cors) {
      res.writeHead(204, {
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "authorization, content-type",
        "access-control-max-age": "600",
      });
      res.end();
      return;
    }
    if (keyDigest && !authorized(req.headers.authorization, keyDigest))
      throw new ApiError(
        401,
        "missing or wrong API key: send the header Authorization: Bearer <key>",
        "authentication_error",
        null,
        "invalid_api_key",
      );
    const routes: Record<string, string> = {
      "/health": "GET",
      "/v1/models": "GET",
      [`/v1/models/${worker.info.id}`]: "GET",
      "/v1/completions": "POST",
      "/v1/chat/completions": "POST",
    };
    const method = routes[path];
    if (method === undefined)
      throw new ApiError(
        404,
        `no such path ${JSON.stringify(path)}: this server answers /v1/models, /v1/completions, /v1/chat/completions and /health`,
        "invalid_request_error",
        null,
        "not_found",
      );
    if (req.method !== method) {
      res.setHeader("allow", method);
      throw new ApiError(405, `${path} takes ${method}, not ${req.method}`, "invalid_request_error", null, "method_not_allowed");
    }
    const model = { id: worker.info.id, object: "model", created: 0, owned_by: "minigpt" };
    if (path === "/health") {
      const healthy = worker.dead === null;
      sendJson(res, healthy ? 200 : 503, { status: healthy ? "ok" : "down", model: worker.info.id, ...worker.load });
    } else if (path === "/v1/models") sendJson(res, 200, { object: "list", data: [model] });
    else if (path.startsWith("/v1/models/")) sendJson(res, 200, model);
    else {
      const body = await readBody(req, res, o.bodyTimeout * 1000);
      let json: unknown;
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch (e) {
        throw new ApiError(
          400,
          `the body is not valid JSON (${e instanceof Error ? e.message : "parse error"})`,
          "invalid_request_error",
          null,
          "invalid_json",
        );
      }
      const request = parseGenerationRequest(path === "/v1/completions" ? "completion" : "chat", json);
      if (request.model !== worker.info.id)
        throw new ApiError(
          404,
          `The model '${request.model}' does not exist: this server serves '${worker.info.id}'`,
          "invalid_request_error",
          "model",
          "model_not_found",
        );
      await generate(req, res, request, tokens);
    }
  }

  /** Run one request on the worker and answer it, streamed or whole. */
  function generate(req: IncomingMessage, res: ServerResponse, r: GenerationRequest, tokens: LogTokens): Promise<void> {
    return new Promise<void>((done, reject) => {
      const id = responseId(r.kind);
      const created = Math.floor(Date.now() / 1000);
      const choices = Array.from({ length: r.n }, () => new ChoiceText());
      const chunks = new ChunkWriter(r, id, created);
      let warning: string | null = null;
      let finished = false;
      const end = () => {
        finished = true;
        clearTimeout(timer);
        done();
      };
      const writeEvent = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
      const handlers = {
        started(s: Started) {
          tokens.prompt = s.promptTokens;
          warning = s.warnings.length > 0 ? s.warnings.join("; ") : null;
          if (warning !== null) res.setHeader("x-minigpt-warning", headerSafe(warning));
          if (!r.stream) return;
          res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
          for (const c of chunks.opening(warning)) writeEvent(c);
        },
        event(e: EngineEvent) {
          if (finished) return;
          const choice = choices[e.type === "done" ? 0 : e.choice] as ChoiceText;
          if (e.type === "delta") {
            tokens.completion = e.completionTokens;
            if (r.stream) writeEvent(chunks.delta(e.choice, e.text, e.logprobs));
            else {
              choice.text += e.text;
              choice.logprobs.push(...e.logprobs);
            }
          } else if (e.type === "finish") {
            if (r.stream) writeEvent(chunks.finish(e.choice, e.reason));
            else choice.finishReason = e.reason;
          } else {
            tokens.completion = e.completionTokens;
            const u = usage(tokens.prompt, e.completionTokens);
            if (r.stream) {
              if (r.includeUsage) writeEvent(chunks.usage(u));
              res.end("data: [DONE]\n\n");
            } else sendJson(res, 200, completionBody(r, id, created, choices, u, warning));
            end();
          }
        },
        failed(e: ApiError) {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          if (res.headersSent) {
            writeEvent(e.body);
            res.end();
            done();
          } else reject(e);
        },
      };
      const requestId = worker.submit(r, handlers);
      const timer =
        o.timeout > 0
          ? setTimeout(() => {
              worker.cancel(requestId);
              handlers.failed(
                new ApiError(
                  504,
                  `the request took longer than the server's time limit (${o.timeout} s)`,
                  "timeout_error",
                  null,
                  "timeout",
                ),
              );
            }, o.timeout * 1000)
          : undefined;
      // a client that leaves stops its generation and frees its place in the batch
      res.on("close", () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        worker.cancel(requestId);
        done();
      });
      void req;
    });
  }

  try {
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      // a deep accept queue: a burst of clients gets 429s, not refused connections
      server.listen({ port: o.port, host: o.host, backlog: 4096 }, () => {
        server.off("error", fail);
        ok();
      });
    });
  } catch (err) {
    // a port in use or an address not of this machine: the generation thread must not keep the process alive
    await worker.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    server,
    model: worker.info,
    host: address.address,
    port: address.port,
    url: `http://${urlHost}:${address.port}`,
    served: () => ({ ...served }),
    async close() {
      closing = true;
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      await worker.close();
    },
  };
}

/** constant-time comparison of the Bearer key (through digests, so lengths never leak either) */
function authorized(header: string | undefined, keyDigest: Buffer): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? "");
  if (!match) return false;
  return timingSafeEqual(
    createHash("sha256")
      .update(match[1] as string)
      .digest(),
    keyDigest,
  );
}

/** The request body, at most MAX_BODY_BYTES, within timeoutMs; ApiError 413 / 408 otherwise. */
function readBody(req: IncomingMessage, res: ServerResponse, timeoutMs: number): Promise<Buffer> {
  // an answer before the whole body is read closes the connection: what is left of it cannot be skipped safely
  const refuse = (e: ApiError) => {
    res.setHeader("connection", "close");
    res.once("finish", () => req.socket.destroy());
    return e;
  };
  const declared = Number(req.headers["content-length"]);
  const tooLarge = () =>
    new ApiError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`, "invalid_request_error", null, "body_too_large");
  if (declared > MAX_BODY_BYTES) return Promise.reject(refuse(tooLarge()));
  return new Promise<Buffer>((ok, fail) => {
    const parts: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      stop();
      fail(
        refuse(
          new ApiError(408, `the request body did not arrive within ${timeoutMs / 1000} s`, "invalid_request_error", null, "body_timeout"),
        ),
      );
    }, timeoutMs);
    const onData = (part: Buffer) => {
      size += part.length;
      if (size > MAX_BODY_BYTES) {
        stop();
        fail(refuse(tooLarge()));
      } else parts.push(part);
    };
    const onEnd = () => {
      stop();
      ok(Buffer.concat(parts));
    };
    const onError = () => {
      stop();
      fail(new ApiError(400, "the request body could not be read", "invalid_request_error"));
    };
    const stop = () => {
      clearTimeout(timer);
      req.off("data", onData).off("end", onEnd).off("error", onError);
    };
    req.on("data", onData).on("end", onEnd).on("error", onError);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e.status === 429) res.setHeader("retry-after", String(RETRY_AFTER_S));
  sendJson(res, e.status, e.body);
}

/** a header value: one line of printable ASCII */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}
