/**
 * `minigpt attention`'s page: one heat map per layer and head, drawn on a canvas from compact data,
 * with a colour scale and the value of the cell under the pointer. Self-contained (no network, no
 * external files); it needs JavaScript, and says so when it is off.
 *
 * Size: a cell as SVG markup with its own tooltip costs ~150 bytes (31 tokens, 4 layers x 4 heads
 * made a 1.2 MB page). Here a head's causal triangle, T(T+1)/2 weights, is stored as 16-bit values
 * (weight x 65535, rounded: within 1e-5 of the weight) in base64, row after row: 2.7 bytes a cell, so
 * ~1.3 kB a head at 31 tokens.
 */
import type { Tokenizer } from "../tokenizer/types.js";
import { type ForwardTrace, tokenLabel } from "./explain.js";

/** What the page's script reads (the JSON in <script id="attention-data">). */
export interface AttentionPageData {
  /** token labels, as on the axes */
  tokens: string[];
  /** one per layer and head: w is base64 of little-endian uint16 weight x 65535, query t's keys 0..t after each other */
  maps: { layer: number; head: number; w: string }[];
}

/** The largest 16-bit value: weight 1. */
const QUANT = 65535;

/** A (T, T) causal attention matrix's lower triangle as the page stores it. */
export function encodeAttention(w: Float32Array, T: number): string {
  const bytes = new Uint8Array(T * (T + 1));
  const view = new DataView(bytes.buffer);
  let i = 0;
  for (let t = 0; t < T; t++)
    for (let s = 0; s <= t; s++, i++) view.setUint16(2 * i, Math.round(Math.min(1, Math.max(0, w[t * T + s] as number)) * QUANT), true);
  let binary = "";
  for (let at = 0; at < bytes.length; at += 8192) binary += String.fromCharCode(...bytes.subarray(at, at + 8192));
  return btoa(binary);
}

/** The inverse of encodeAttention: the triangle's weights, row after row (tests read pages back with it). */
export function decodeAttention(b64: string): Float32Array {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  return Float32Array.from({ length: bytes.length / 2 }, (_, i) => view.getUint16(2 * i, true) / QUANT);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * The page script: draws every map and the colour scale, and shows the cell under the pointer.
 * Colour: hsl(220, 80%, L) with L from 100% (weight 0) down to 15% (weight 1), as the terminal's
 * shades go from light to dark. Plain JavaScript in a string: it runs in the browser, not here.
 */
const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById("attention-data").textContent);
const T = data.tokens.length;
const colour = (v) => "hsl(220,80%," + (100 - 85 * v).toFixed(1) + "%)";
const ratio = window.devicePixelRatio || 1;
function sized(canvas) {
  const w = Number(canvas.dataset.width), h = Number(canvas.dataset.height);
  canvas.style.width = w + "px";
  canvas.style.height = h + "px";
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  return g;
}
function weights(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  return Float32Array.from({ length: bytes.length / 2 }, (_, i) => view.getUint16(2 * i, true) / ${QUANT});
}
const tip = document.getElementById("tip");
for (const canvas of document.querySelectorAll("canvas.map")) {
  const m = data.maps[Number(canvas.dataset.map)];
  const w = weights(m.w);
  const cell = Number(canvas.dataset.cell), margin = Number(canvas.dataset.margin);
  const g = sized(canvas);
  g.strokeStyle = "#d1d5db";
  g.strokeRect(margin - 0.5, margin - 0.5, T * cell + 1, T * cell + 1);
  for (let t = 0, i = 0; t < T; t++)
    for (let s = 0; s <= t; s++, i++) {
      g.fillStyle = colour(w[i]);
      g.fillRect(margin + s * cell, margin + t * cell, cell, cell);
    }
  g.fillStyle = "#1f2937";
  g.font = Math.min(12, cell) + "px monospace";
  for (let t = 0; t < T; t++) {
    g.textAlign = "right";
    g.textBaseline = "middle";
    g.fillText(data.tokens[t], margin - 4, margin + (t + 0.5) * cell);
    g.save();
    g.translate(margin + (t + 0.5) * cell, margin - 4);
    g.rotate(-Math.PI / 2);
    g.textAlign = "left";
    g.fillText(data.tokens[t], 0, 0);
    g.restore();
  }
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    const s = Math.floor((e.clientX - r.left - margin) / cell), t = Math.floor((e.clientY - r.top - margin) / cell);
    if (t < 0 || t >= T || s < 0 || s > t) return void (tip.hidden = true);
    const v = w[(t * (t + 1)) / 2 + s];
    tip.textContent = "layer " + m.layer + ", head " + m.head + ": query " + t + " \\u201c" + data.tokens[t] + "\\u201d \\u2192 key " + s + " \\u201c" + data.tokens[s] + "\\u201d: " + v.toFixed(4);
    tip.style.left = e.pageX + 12 + "px";
    tip.style.top = e.pageY + 12 + "px";
    tip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => (tip.hidden = true));
}
const scale = document.getElementById("scale");
const g = sized(scale);
const sw = Number(scale.dataset.width), sh = Number(scale.dataset.height);
for (let x = 0; x < sw; x++) {
  g.fillStyle = colour(x / (sw - 1));
  g.fillRect(x, 0, 1, sh);
}
g.strokeStyle = "#9ca3af";
g.strokeRect(0.5, 0.5, sw - 1, sh - 1);
`;

/** The colour scale's labelled values. */
const SCALE_TICKS = [0, 0.25, 0.5, 0.75, 1];
const SCALE_WIDTH = 240;

/**
 * The page for the attention weights of `trace` (one forward pass): every layer and head, a colour
 * scale, hover values. The data is in AttentionPageData form.
 */
export function attentionHtml(trace: ForwardTrace, tokenizer: Tokenizer, title: string): string {
  const T = trace.ids.length;
  const labels = trace.ids.map((id) => tokenLabel(tokenizer, id, 10));
  const cell = T > 48 ? 8 : 16;
  const margin = 8 + 7 * Math.max(...labels.map((l) => l.length), 1);
  const size = margin + T * cell + 4;
  const data: AttentionPageData = { tokens: labels, maps: [] };
  const figures: string[] = [];
  for (const [layer, heads] of trace.attention.entries()) {
    for (const [head, w] of heads.entries()) {
      figures.push(
        `<figure><figcaption>layer ${layer}, head ${head}</figcaption><canvas class="map" data-map="${data.maps.length}" data-cell="${cell}" data-margin="${margin}" data-width="${size}" data-height="${size}" width="${size}" height="${size}"></canvas></figure>`,
      );
      data.maps.push({ layer, head, w: encodeAttention(w, T) });
    }
  }
  const ticks = SCALE_TICKS.map((v) => `<span style="left:${v * SCALE_WIDTH}px">${v}</span>`).join("");
  // "<" escaped so that no token's text can close the script element
  const json = JSON.stringify(data).replace(/</g, "\\u003c");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>
body{font-family:sans-serif;margin:1em;color:#1f2937}
figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
figcaption{font-weight:bold}
.legend{display:flex;align-items:flex-start;gap:.75em;margin:0 0 1.5em}
.legend .ticks{position:relative;width:${SCALE_WIDTH}px;height:1.2em;font-size:12px}
.legend .ticks span{position:absolute;transform:translateX(-50%)}
#tip{position:absolute;background:#111827;color:#fff;font:12px monospace;padding:3px 6px;border-radius:3px;pointer-events:none;white-space:pre}
</style>
</head><body>
<h1>${escapeXml(title)}</h1>
<p>Attention weights softmax(q·kᵀ/√hs) of every layer and head. Rows: the token that looks (query); columns: the tokens it looks at (keys, causal: only earlier ones). Darker = more weight; each row sums to 1. Hover a cell for its value.</p>
<div class="legend" role="img" aria-label="colour scale: attention weight from 0 (white) to 1 (dark blue)"><span>attention weight</span><div><canvas id="scale" data-width="${SCALE_WIDTH}" data-height="14" width="${SCALE_WIDTH}" height="14"></canvas><div class="ticks">${ticks}</div></div></div>
<p>Tokens: ${labels.map((l) => `<code>${escapeXml(l)}</code>`).join(" ")}</p>
<noscript><p>This page draws its maps with JavaScript: allow scripts to see them.</p></noscript>
${figures.join("\n")}
<div id="tip" hidden></div>
<script id="attention-data" type="application/json">${json}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
