/**
 * The request bodies of POST /v1/completions and /v1/chat/completions, checked the way OpenAI checks
 * them and turned into one GenerationRequest. Unknown parameters are ignored (clients send many);
 * known ones minigpt cannot honour get 400 naming the parameter, so nobody believes they had an effect.
 */
import { randomInt } from "node:crypto";
import type { ChatMessage } from "../data/chat.js";
import { badParam } from "./api-error.js";

const MAX_CHOICES = 8;
const MAX_STOPS = 4;
/** a stop string is checked against the text's end at every token: a long one would stall every request in flight */
const MAX_STOP_CHARS = 256;
/** OpenAI's limits: chat top_logprobs 0-20, completions logprobs 0-5 */
const MAX_TOP_LOGPROBS = { chat: 20, completion: 5 } as const;

export interface GenerationRequest {
  kind: "chat" | "completion";
  /** the `model` field as sent (checked against the served model's id by the server) */
  model: string;
  /** completion: the text to continue */
  prompt: string;
  /** chat: the conversation (developer messages count as system messages) */
  messages: ChatMessage[];
  /** new tokens at most; null = the rest of the context (chat's default) */
  maxTokens: number | null;
  temperature: number;
  topP: number;
  /** an extension (0 = off) */
  topK: number;
  /** the text ends before the first of these */
  stop: string[];
  /** choice k is sampled with seed + k; a random seed when the request names none */
  seed: number;
  n: number;
  /** alternatives listed per token, or null for no log probabilities */
  logprobs: number | null;
  stream: boolean;
  includeUsage: boolean;
}

type Body = Record<string, unknown>;

function present(body: Body, key: string): boolean {
  return body[key] !== undefined && body[key] !== null;
}

function number(body: Body, key: string, fallback: number, min: number, max: number, integer = false): number {
  if (!present(body, key)) return fallback;
  const v = body[key];
  if (typeof v !== "number" || !Number.isFinite(v))
    throw badParam(key, `'${key}' must be a number, got ${JSON.stringify(v)}`, "invalid_type");
  if (integer && !Number.isInteger(v)) throw badParam(key, `'${key}' must be an integer, got ${v}`, "invalid_type");
  if (v < min || v > max) throw badParam(key, `'${key}' must be between ${min} and ${max}, got ${v}`);
  return v;
}

function boolean(body: Body, key: string, fallback: boolean): boolean {
  if (!present(body, key)) return fallback;
  const v = body[key];
  if (typeof v !== "boolean") throw badParam(key, `'${key}' must be a boolean, got ${JSON.stringify(v)}`, "invalid_type");
  return v;
}

/** parameters minigpt cannot honour: 400 rather than silently ignoring them */
function refuseUnsupported(body: Body): void {
  for (const key of ["tools", "functions"]) {
    const v = body[key];
    if (present(body, key) && !(Array.isArray(v) && v.length === 0))
      throw badParam(key, `'${key}' is not supported: minigpt models do not call tools`, "unsupported_parameter");
  }
  const format = body.response_format;
  if (present(body, "response_format") && (format as { type?: unknown }).type !== "text")
    throw badParam("response_format", '\'response_format\' other than {"type":"text"} is not supported', "unsupported_parameter");
  const bias = body.logit_bias;
  if (present(body, "logit_bias") && !(typeof bias === "object" && Object.keys(bias as object).length === 0))
    throw badParam("logit_bias", "'logit_bias' is not supported", "unsupported_parameter");
  for (const key of ["frequency_penalty", "presence_penalty"])
    if (number(body, key, 0, -2, 2) !== 0) throw badParam(key, `'${key}' other than 0 is not supported`, "unsupported_parameter");
  if (boolean(body, "echo", false)) throw badParam("echo", "'echo' is not supported", "unsupported_parameter");
  if (number(body, "best_of", 1, 1, 1, true) !== 1)
    throw badParam("best_of", "'best_of' other than 1 is not supported", "unsupported_parameter");
}

/** top_p in (0, 1]: 0 would keep no token */
function topP(body: Body): number {
  const p = number(body, "top_p", 1, 0, 1);
  if (p === 0) throw badParam("top_p", "'top_p' must be above 0 (1 = off), got 0");
  return p;
}

function stops(body: Body): string[] {
  if (!present(body, "stop")) return [];
  const v = body.stop;
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string"))
    throw badParam("stop", "'stop' must be a string or an array of strings", "invalid_type");
  if (list.length > MAX_STOPS) throw badParam("stop", `'stop' takes at most ${MAX_STOPS} strings, got ${list.length}`);
  if ((list as string[]).some((s) => s.length > MAX_STOP_CHARS))
    throw badParam("stop", `a 'stop' string may be at most ${MAX_STOP_CHARS} characters long`);
  return (list as string[]).filter((s) => s !== "");
}

function messageText(content: unknown, at: string): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    let text = "";
    for (const part of content) {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (p?.type !== "text" || typeof p.text !== "string")
        throw badParam(at, `${at}: only text parts ({"type":"text","text":"..."}) are supported`, "invalid_type");
      text += p.text;
    }
    return text;
  }
  throw badParam(at, `${at} must be a string or an array of text parts`, "invalid_type");
}

function messages(body: Body): ChatMessage[] {
  const list = body.messages;
  if (!Array.isArray(list))
    throw badParam(
      "messages",
      "'messages' must be an array of {role, content}",
      present(body, "messages") ? "invalid_type" : "missing_required_parameter",
    );
  if (list.length === 0) throw badParam("messages", "'messages' must hold at least one message");
  return list.map((m, i) => {
    const at = `messages[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m))
      throw badParam(at, `${at} must be an object {role, content}`, "invalid_type");
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (role !== "system" && role !== "developer" && role !== "user" && role !== "assistant")
      throw badParam(`${at}.role`, `${at}.role must be "system", "developer", "user" or "assistant", got ${JSON.stringify(role)}`);
    return { role: role === "developer" ? "system" : role, content: messageText(content, `${at}.content`) };
  });
}

/** Check a parsed JSON body of either endpoint; throws ApiError (400) on the first problem. */
export function parseGenerationRequest(kind: "chat" | "completion", json: unknown): GenerationRequest {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw badParam("body", "the request body must be a JSON object", "invalid_type");
  const body = json as Body;
  if (typeof body.model !== "string")
    throw badParam(
      "model",
      "'model' must be a string (GET /v1/models lists it)",
      present(body, "model") ? "invalid_type" : "missing_required_parameter",
    );
  refuseUnsupported(body);
  let prompt = "";
  let chat: ChatMessage[] = [];
  if (kind === "completion") {
    const p = body.prompt;
    if (typeof p === "string") prompt = p;
    else if (Array.isArray(p) && p.length === 1 && typeof p[0] === "string") prompt = p[0];
    else if (Array.isArray(p))
      throw badParam(
        "prompt",
        "'prompt' must be one string (minigpt serves one prompt per request; use n for several samples)",
        "invalid_type",
      );
    else throw badParam("prompt", "'prompt' must be a string", present(body, "prompt") ? "invalid_type" : "missing_required_parameter");
    if (prompt === "") throw badParam("prompt", "'prompt' is empty: give at least one character");
  } else chat = messages(body);
  let maxTokens: number | null = number(body, "max_tokens", kind === "completion" ? 16 : Number.NaN, 1, Number.MAX_SAFE_INTEGER, true);
  if (kind === "chat") maxTokens = number(body, "max_completion_tokens", maxTokens, 1, Number.MAX_SAFE_INTEGER, true);
  if (Number.isNaN(maxTokens)) maxTokens = null;
  let logprobs: number | null = null;
  if (kind === "chat") {
    const on = boolean(body, "logprobs", false);
    const top = number(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS.chat, true);
    if (present(body, "top_logprobs") && !on) throw badParam("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    logprobs = on ? top : null;
  } else if (present(body, "logprobs")) logprobs = number(body, "logprobs", 0, 0, MAX_TOP_LOGPROBS.completion, true);
  const stream = boolean(body, "stream", false);
  const options = body.stream_options;
  if (present(body, "stream_options") && (typeof options !== "object" || Array.isArray(options)))
    throw badParam("stream_options", "'stream_options' must be an object", "invalid_type");
  const includeUsage = stream && present(body, "stream_options") && boolean(options as Body, "include_usage", false);
  return {
    kind,
    model: body.model,
    prompt,
    messages: chat,
    maxTokens,
    temperature: number(body, "temperature", 1, 0, 2),
    topP: topP(body),
    topK: number(body, "top_k", 0, 0, Number.MAX_SAFE_INTEGER, true),
    stop: stops(body),
    seed: present(body, "seed") ? number(body, "seed", 0, -(2 ** 53), 2 ** 53, true) : randomInt(2 ** 31),
    n: number(body, "n", 1, 1, MAX_CHOICES, true),
    logprobs,
    stream,
    includeUsage,
  };
}
