/**
 * A text source read in pieces, for corpora too big for one string (V8 caps a string at ~512 M
 * characters, and an array of one number per character far below that). Yields the text
 * loadTextSource would return, as consecutive chunks: each file strict UTF-8 (a leading BOM
 * dropped), files joined with FILE_SEPARATOR. A chunk never ends inside a character: a partial
 * UTF-8 sequence at the end of a read is held back until its next bytes are read.
 *
 * The chunks come as bytes (readTextBytes: what the token cache hands to its worker threads, which
 * decode them there) or as strings (readTextChunks). Checking and decoding use Node's native
 * buffer.isUtf8 and decodeUtf8, several times faster than a fatal TextDecoder.
 */
import { isUtf8 } from "node:buffer";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { fail, failFs } from "../errors.js";
import { checkNotEmpty, FILE_SEPARATOR, type TextFiles } from "./text.js";
import { decodeUtf8 } from "./utf8.js";

/** Bytes read per step: big enough that per-chunk costs vanish, small enough to stay out of the way. */
const CHUNK_BYTES = 4 << 20;

/** A source file as the token cache remembers it: a change of size or mtime means it must be read again. */
export interface FileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Absolute path, size and mtime of every file of a source, in joining order. */
export function stampFiles(files: readonly string[]): FileStamp[] {
  return files.map((f) => {
    const path = resolve(f);
    try {
      const st = statSync(path);
      return { path, size: st.size, mtimeMs: st.mtimeMs };
    } catch (err) {
      return failFs(`cannot read ${f}`, err);
    }
  });
}

/** Bytes of all the files of a source (the size the token cache is chosen by). */
export function sourceBytes(files: readonly string[]): number {
  return stampFiles(files).reduce((sum, f) => sum + f.size, 0);
}

interface TextChunk {
  text: string;
  /** source bytes read so far, all files together (for progress) */
  bytesRead: number;
}

interface ByteChunk {
  /** whole UTF-8 characters; a view that is valid until the next chunk is asked for */
  bytes: Uint8Array;
  /** source bytes read so far, all files together (for progress) */
  bytesRead: number;
}

const SEPARATOR = new TextEncoder().encode(FILE_SEPARATOR);
const BOM = [0xef, 0xbb, 0xbf];
/** the longest UTF-8 sequence, less one: what a read can end inside of */
const MAX_PARTIAL = 3;

/** The end of the whole characters of `b`: before a last sequence its lead byte says is not complete yet. */
function wholeCharactersEnd(b: Uint8Array): number {
  const n = b.length;
  for (let i = n - 1; i >= 0 && i >= n - MAX_PARTIAL - 1; i--) {
    const c = b[i] as number;
    if ((c & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead
    const length = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    return i + length <= n ? n : i;
  }
  return n; // only continuation bytes: not UTF-8, which the check then says
}

/** Whether whole UTF-8 characters hold anything but whitespace (as /\S/ says), decoded only from the first byte that is not ASCII whitespace. */
function hasText(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) continue;
    // any other ASCII byte is text; a non-ASCII character may be Unicode whitespace (U+00A0, U+3000)
    return c < 0x80 || /\S/.test(decodeUtf8(b.subarray(i)));
  }
  return false;
}

/** The text of `source` as whole-character byte chunks of about `chunkBytes`; fails like readTextFile on a bad file. */
export function* readTextBytes(source: TextFiles, chunkBytes = CHUNK_BYTES): Generator<ByteChunk> {
  const buffer = new Uint8Array(chunkBytes + MAX_PARTIAL);
  let bytesRead = 0;
  let sawText = false;
  for (const [k, path] of source.files.entries()) {
    if (k > 0) yield { bytes: SEPARATOR, bytesRead };
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      failFs(`cannot read ${path}`, err);
    }
    try {
      const read = (into: Uint8Array, at: number, length: number, position: number): number => {
        try {
          return readSync(fd, into, at, length, position);
        } catch (err) {
          return failFs(`cannot read ${path}`, err);
        }
      };
      // a byte order mark at the start is not text (TextDecoder drops it too)
      const head = new Uint8Array(BOM.length);
      const headLength = read(head, 0, head.length, 0);
      let position = headLength === BOM.length && BOM.every((b, i) => head[i] === b) ? BOM.length : 0;
      bytesRead += position;
      let held = 0; // the start of a character the last read ended inside of, moved to buffer[0]
      for (;;) {
        const n = read(buffer, held, chunkBytes, position);
        const all = buffer.subarray(0, held + n);
        const nul = all.indexOf(0, held);
        if (nul !== -1) fail(`${path} looks like a binary file (NUL byte at offset ${position - held + nul}); give a UTF-8 text file`);
        const end = n === 0 ? all.length : wholeCharactersEnd(all);
        const whole = all.subarray(0, end);
        if (!isUtf8(whole)) fail(`${path} is not valid UTF-8 text; convert it first (e.g. iconv -f latin1 -t utf-8 in > out)`);
        position += n;
        bytesRead += n;
        if (!sawText) sawText = hasText(whole);
        if (end > 0) yield { bytes: whole, bytesRead };
        if (n === 0) break;
        buffer.copyWithin(0, end, all.length);
        held = all.length - end;
      }
    } finally {
      closeSync(fd);
    }
  }
  if (!sawText) checkNotEmpty("", source.what);
}

/** The text of `source` in string chunks of about `chunkBytes` bytes (readTextBytes, decoded). */
export function* readTextChunks(source: TextFiles, chunkBytes = CHUNK_BYTES): Generator<TextChunk> {
  for (const chunk of readTextBytes(source, chunkBytes)) yield { text: decodeUtf8(chunk.bytes), bytesRead: chunk.bytesRead };
}

/** At least the first `characters` characters of `source` (all of it if shorter), reading no more chunks than that takes. */
export function textStart(source: TextFiles, characters: number): string {
  let text = "";
  for (const chunk of readTextChunks(source, Math.min(CHUNK_BYTES, 4 * characters + 4))) {
    text += chunk.text;
    if (text.length >= characters) break;
  }
  return text;
}
