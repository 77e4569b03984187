/**
 * A text source read in pieces, for corpora too big for one string (V8 caps a string at ~512 M
 * characters, and an array of one number per character far below that). Yields the same text
 * loadTextSource would return, as consecutive chunks: each file decoded as strict UTF-8 (a leading
 * BOM dropped), files joined with FILE_SEPARATOR. A chunk never ends inside a character: the
 * streaming decoder holds back a partial UTF-8 sequence until its next bytes are read.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { fail, failFs } from "../errors.js";
import { checkNotEmpty, FILE_SEPARATOR, type TextFiles } from "./text.js";

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

/** The text of `source` in chunks of about `chunkBytes` bytes; fails like readTextFile on a bad file. */
export function* readTextChunks(source: TextFiles, chunkBytes = CHUNK_BYTES): Generator<TextChunk> {
  const buffer = new Uint8Array(chunkBytes);
  let bytesRead = 0;
  let sawText = false;
  for (const [k, path] of source.files.entries()) {
    if (k > 0) yield { text: FILE_SEPARATOR, bytesRead };
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      fail(`cannot read ${path}: ${(err as Error).message}`);
    }
    try {
      const decoder = new TextDecoder("utf-8", { fatal: true });
      let offset = 0;
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, buffer, 0, buffer.length, null);
        } catch (err) {
          fail(`cannot read ${path}: ${(err as Error).message}`);
        }
        const bytes = buffer.subarray(0, n);
        const nul = bytes.indexOf(0);
        if (nul !== -1) fail(`${path} looks like a binary file (NUL byte at offset ${offset + nul}); give a UTF-8 text file`);
        let text: string;
        try {
          text = decoder.decode(bytes, { stream: n > 0 });
        } catch {
          fail(`${path} is not valid UTF-8 text; convert it first (e.g. iconv -f latin1 -t utf-8 in > out)`);
        }
        offset += n;
        bytesRead += n;
        if (!sawText && /\S/.test(text)) sawText = true;
        if (text.length > 0 || n === 0) yield { text, bytesRead };
        if (n === 0) break;
      }
    } finally {
      closeSync(fd);
    }
  }
  if (!sawText) checkNotEmpty("", source.what);
}
