/**
 * `minigpt web`: serve the web playground (web/, built into dist/web/ by `npm run build`) over HTTP
 * on this machine, cross-origin isolated (COOP/COEP, and CORP on every file), which the page needs
 * for SharedArrayBuffer and so for training on several threads. The page does all the work in the
 * browser; this only hands out its files.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "../index.js";
import { failListen } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { untilStopAsked } from "./interrupt.js";

export const webSpec: CommandSpec = {
  name: "web",
  summary: "the web playground: train, generate and look inside a model in your browser (served on this machine)",
  usage: "minigpt web [--port 8081] [--host 127.0.0.1] [--open]",
  flags: [
    { name: "port", type: "int", default: 8081, min: 0, max: 65535, help: "port to listen on (0 = any free port)" },
    {
      name: "host",
      type: "string",
      default: "127.0.0.1",
      help: "address to listen on (127.0.0.1 = this machine only; 0.0.0.0 = every network, which a browser only isolates on localhost or https)",
    },
    { name: "open", type: "bool", default: false, help: "open the page in the default browser" },
  ],
  examples: ["minigpt web", "minigpt web --port 9000 --open"],
  notes: [
    "The page is built into dist/web/ by npm run build (npm install in the clone runs it). It is sent with",
    "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, so the page is",
    "cross-origin isolated and trains on several Web Workers; any static host that sends those headers",
    "serves dist/web/ as well. Models and runs stay in the browser (IndexedDB); nothing is sent here.",
  ],
};

const HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
};

/** dist/web of this package: from dist/src/cli/ (built) or src/cli/ (run from source by tsx) */
export function builtPageDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, import.meta.url.endsWith(".ts") ? "../../dist/web" : "../../web");
}

/** An HTTP server of `root`'s files (GET and HEAD; no listing, nothing outside root). */
export function pageServer(root: string): Server {
  return createServer((req, res) => {
    void (async () => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { ...HEADERS, Allow: "GET, HEAD" }).end();
        return;
      }
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
      } catch {
        res.writeHead(400, HEADERS).end();
        return;
      }
      const file = normalize(join(root, path.endsWith("/") ? `${path}index.html` : path));
      if (!file.startsWith(root + sep)) {
        res.writeHead(403, HEADERS).end();
        return;
      }
      try {
        const body = await readFile(file);
        // hashed assets never change; index.html and the book are looked at again each time
        const cache = file.includes(`${sep}assets${sep}`) ? "public, max-age=31536000, immutable" : "no-cache";
        res.writeHead(200, { ...HEADERS, "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": cache });
        res.end(req.method === "HEAD" ? undefined : body);
      } catch {
        res.writeHead(404, { ...HEADERS, "Content-Type": "text/plain; charset=utf-8" }).end("not found\n");
      }
    })();
  });
}

function openInBrowser(url: string): void {
  const command = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  const child = spawn(command, [url], { stdio: "ignore", detached: true });
  child.on("error", () => process.stderr.write(`minigpt web: could not start ${command}; open ${url} yourself\n`));
  child.unref();
}

export async function runWeb(argv: readonly string[]): Promise<number> {
  const f = parseFlags(webSpec, argv);
  const root = builtPageDir();
  if (!existsSync(join(root, "index.html")))
    fail(`the web page is not built (no ${join(root, "index.html")}): run npm run build in the clone (npm install does it too)`);
  const server = pageServer(root);
  const port = f.int("port");
  const host = f.string("host");
  const { stopped, forget } = untilStopAsked();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, resolve);
    });
  } catch (err) {
    forget();
    failListen(err, host, port);
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}/`;
  process.stderr.write(`minigpt web: the playground is at ${url} (serving ${root}, cross-origin isolated; Ctrl-C stops)\n`);
  if (f.bool("open")) openInBrowser(url);
  await stopped;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  process.stderr.write("minigpt web: stopped\n");
  return 0;
}
