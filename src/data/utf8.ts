/**
 * Decoding text that is already known to be whole, valid UTF-8 (checked by readTextBytes), for the
 * token cache's threads: Node's native decoders, without the cost of a fatal TextDecoder. Node
 * only (the tokenizers, which also run in browsers, do not import this).
 */
import { Buffer, isAscii } from "node:buffer";

/** The string of whole, valid UTF-8 characters: a plain copy (Latin-1) when they are all ASCII. */
export function decodeUtf8(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return isAscii(b) ? b.toString("latin1") : b.toString("utf8");
}
