/**
 * Loss curves as a self-contained SVG (no scripts, no external fonts or styles): open it in a browser,
 * embed it in a README, or attach it to a run report.
 *
 * Training loss is a thin line (one point per logged step); validation loss is a thicker line with dots
 * (it is measured less often). The y axis is linear and starts at the data, not at zero, so late
 * progress stays visible. Non-finite losses (a diverged step) break the line instead of wrecking the scale.
 * The learning rate, when the points have it, is a faint line on its own axis (right, from zero); a
 * step where a resume continued the run is a dashed vertical line, so a change of plan there (a new
 * end re-plans the cosine) reads as one.
 */

export interface LossPoint {
  step: number;
  loss?: number;
  val_loss?: number;
  /** the learning rate of the step */
  lr?: number;
  /** on the first step of a resumed run: the step it continued from */
  resumed_from?: number;
}

const WIDTH = 760;
const HEIGHT = 420;
const MARGIN = { left: 68, right: 68, top: 64, bottom: 56 };
const FONT = `system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif`;
const TRAIN_COLOR = "#2563eb";
const VAL_COLOR = "#ea580c";
const LR_COLOR = "#16a34a";
const RESUME_COLOR = "#9ca3af";
const INK = "#1f2937";
const MUTED = "#6b7280";
const GRID = "#e5e7eb";

export function lossPlotSvg(points: LossPoint[], title: string): string {
  const train = series(points, "loss");
  const val = series(points, "val_loss");
  const lr = series(points, "lr").filter((p) => Number.isFinite(p.y));
  const resumes = [
    ...new Set(points.flatMap((p) => (p.resumed_from !== undefined && Number.isFinite(p.resumed_from) ? [p.resumed_from] : []))),
  ];
  const all = [...train, ...val];

  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="${FONT}" role="img" aria-label="${esc(title)}">`,
  );
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" rx="8" fill="#ffffff"/>`);
  out.push(`<text x="${MARGIN.left}" y="28" font-size="16" font-weight="600" fill="${INK}">${esc(title)}</text>`);
  out.push(`<text x="${MARGIN.left}" y="48" font-size="12" fill="${MUTED}">${esc(summary(train, val))}</text>`);

  if (all.length === 0) {
    out.push(
      `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="${GRID}"/>`,
      `<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH / 2}" font-size="14" fill="${MUTED}" text-anchor="middle">no loss values yet</text>`,
      "</svg>",
    );
    return `${out.join("\n")}\n`;
  }

  // Domains: x spans the logged steps; y spans the losses, widened to "nice" tick values.
  let [xMin, xMax] = extent([...all.map((p) => p.x), ...resumes]);
  if (xMin === xMax) {
    xMin -= 1;
    xMax += 1;
  }
  // Steps are whole numbers, so drop fractional ticks unless that would leave fewer than two.
  const rawXTicks = niceTicks(xMin, xMax, 6);
  const intXTicks = rawXTicks.filter((t) => Number.isInteger(t));
  const xTicks = intXTicks.length >= 2 ? intXTicks : rawXTicks;
  let [yMin, yMax] = extent(all.map((p) => p.y));
  if (yMin === yMax) {
    const pad = Math.abs(yMin) * 0.1 || 1;
    yMin -= pad;
    yMax += pad;
  }
  const yStep = tickStep(yMin, yMax, 5);
  const yLo = Math.floor(yMin / yStep) * yStep;
  const yHi = Math.ceil(yMax / yStep) * yStep;
  // Every multiple of yStep from yLo to yHi, so both ends of the axis carry a label.
  const yTicks: number[] = [];
  for (let i = 0; i <= Math.round((yHi - yLo) / yStep); i++) yTicks.push(clean(yLo + i * yStep));

  const sx = (x: number): number => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number): number => MARGIN.top + plotH - ((y - yLo) / (yHi - yLo)) * plotH;

  // Grid and tick labels.
  out.push(`<g font-size="11" fill="${MUTED}">`);
  for (const t of yTicks) {
    const y = r(sy(t));
    out.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="${GRID}"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t, yStep)}</text>`);
  }
  const xStep = xTicks.length > 1 ? (xTicks[1] as number) - (xTicks[0] as number) : 1;
  for (const t of xTicks) {
    if (t < xMin || t > xMax) continue;
    const x = r(sx(t));
    out.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="${GRID}"/>`);
    out.push(`<text x="${x}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${formatTick(t, xStep)}</text>`);
  }
  out.push("</g>");

  // Learning rate: its own scale, from zero to a round number at or above the highest rate.
  const lrMax = lr.reduce((m, p) => Math.max(m, p.y), 0);
  const lrStep = tickStep(0, lrMax || 1, 4);
  const lrHi = Math.max(lrStep, Math.ceil(lrMax / lrStep - 1e-9) * lrStep);
  const syLr = (y: number): number => MARGIN.top + plotH - (y / lrHi) * plotH;
  if (lr.length > 0) {
    out.push(`<g class="lr-axis" font-size="11" fill="${LR_COLOR}">`);
    for (let i = 0; i <= Math.round(lrHi / lrStep); i++) {
      const t = clean(i * lrStep);
      out.push(`<text x="${MARGIN.left + plotW + 8}" y="${r(syLr(t))}" dominant-baseline="middle">${formatRate(t)}</text>`);
    }
    out.push(
      "</g>",
      `<text transform="translate(${WIDTH - 14} ${MARGIN.top + plotH / 2}) rotate(90)" font-size="12" fill="${LR_COLOR}" text-anchor="middle">learning rate</text>`,
    );
  }

  // Axes and their labels.
  out.push(
    `<path d="M${MARGIN.left} ${MARGIN.top}V${MARGIN.top + plotH}H${MARGIN.left + plotW}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" font-size="12" fill="${INK}" text-anchor="middle">step</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" font-size="12" fill="${INK}" text-anchor="middle">loss</text>`,
  );

  // Resume points: a dashed line from top to bottom, labelled at the top.
  for (const step of resumes) {
    const x = r(sx(step));
    out.push(
      `<line class="resume" x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="${RESUME_COLOR}" stroke-width="1.25" stroke-dasharray="5 4"/>`,
      `<text x="${x}" y="${MARGIN.top - 5}" font-size="11" fill="${MUTED}" text-anchor="middle">resumed at ${step}</text>`,
    );
  }

  // Curves (the learning rate first, under the losses).
  if (lr.length > 0) {
    out.push(
      `<path class="lr" d="${linePath(lr, sx, syLr, plotW)}" fill="none" stroke="${LR_COLOR}" stroke-width="1.25" stroke-opacity="0.7" stroke-linejoin="round"/>`,
    );
  }
  if (train.length > 0) {
    out.push(
      `<path class="train" d="${linePath(train, sx, sy, plotW)}" fill="none" stroke="${TRAIN_COLOR}" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round"/>`,
    );
  }
  if (val.length > 0) {
    out.push(
      `<path class="val" d="${linePath(val, sx, sy, plotW)}" fill="none" stroke="${VAL_COLOR}" stroke-width="2.25" stroke-linejoin="round" stroke-linecap="round"/>`,
    );
    if (val.length <= 200) {
      out.push(`<g fill="${VAL_COLOR}">`);
      for (const p of val) {
        if (Number.isFinite(p.y)) out.push(`<circle cx="${r(sx(p.x))}" cy="${r(sy(p.y))}" r="3"/>`);
      }
      out.push("</g>");
    }
  }

  // Legend (top right, inside the plot area, on a white card so it stays readable over the lines).
  const entries: [string, string, number, string?][] = [];
  if (train.length > 0) entries.push(["train", TRAIN_COLOR, 1.5]);
  if (val.length > 0) entries.push(["val", VAL_COLOR, 2.25]);
  if (lr.length > 0) entries.push(["learning rate", LR_COLOR, 0.5]);
  if (resumes.length > 0) entries.push(["resumed", RESUME_COLOR, 0.5, "5 4"]);
  const legendW = lr.length > 0 || resumes.length > 0 ? 136 : 84;
  const legendH = 10 + entries.length * 20;
  const lx = MARGIN.left + plotW - legendW - 10;
  const ly = MARGIN.top + 10;
  out.push(`<g class="legend" font-size="12" fill="${INK}">`);
  out.push(`<rect x="${lx}" y="${ly}" width="${legendW}" height="${legendH}" rx="4" fill="#ffffff" fill-opacity="0.9" stroke="${GRID}"/>`);
  entries.forEach(([label, color, w, dash], i) => {
    const y = ly + 15 + i * 20;
    out.push(
      `<line x1="${lx + 10}" y1="${y}" x2="${lx + 34}" y2="${y}" stroke="${color}" stroke-width="${w + 0.75}"${dash ? ` stroke-dasharray="${dash}"` : ' stroke-linecap="round"'}/>`,
    );
    out.push(`<text x="${lx + 42}" y="${y}" dominant-baseline="middle">${label}</text>`);
  });
  out.push("</g>");

  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

interface XY {
  x: number;
  y: number;
}

/** Points with a value for `key`, sorted by step. Non-finite values are kept (as NaN) to break the line. */
function series(points: LossPoint[], key: "loss" | "val_loss" | "lr"): XY[] {
  const out: XY[] = [];
  for (const p of points) {
    const v = p[key];
    if (v === undefined || !Number.isFinite(p.step)) continue;
    out.push({ x: p.step, y: Number.isFinite(v) ? v : Number.NaN });
  }
  out.sort((a, b) => a.x - b.x);
  return out;
}

function extent(values: number[]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Number.POSITIVE_INFINITY) return [0, 1]; // only non-finite values
  return [lo, hi];
}

/** A 1, 2 or 5 times a power of ten, giving about `count` intervals over [lo, hi]. */
function tickStep(lo: number, hi: number, count: number): number {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

function niceTicks(lo: number, hi: number, count: number): number[] {
  const step = tickStep(lo, hi, count);
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  for (let i = first; i <= last; i++) ticks.push(clean(i * step));
  return ticks;
}

/** Remove floating noise like 0.30000000000000004. */
function clean(v: number): number {
  return Number.parseFloat(v.toPrecision(12));
}

function formatTick(v: number, step: number): string {
  if (Math.abs(v) >= 10000 && step >= 1000 && v % 1000 === 0) return `${v / 1000}k`;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(decimals);
}

/** A learning rate tick: 0, 5e-4, 1e-3, 1.5e-3 (rates are small; exponents read better than 0.0005). */
function formatRate(v: number): string {
  if (v === 0) return "0";
  const [mantissa, exponent] = v.toExponential().split("e") as [string, string];
  return `${clean(Number(mantissa))}e${exponent.replace("+", "")}`;
}

function r(v: number): number {
  return Math.round(v * 10) / 10;
}

/**
 * SVG path through the points, with a gap wherever a value is non-finite. Long series are thinned to the
 * lowest and highest value per pixel column, so spikes survive and the file stays small.
 */
function linePath(pts: XY[], sx: (x: number) => number, sy: (y: number) => number, plotW: number): string {
  const thinned = pts.length > 2 * plotW ? thin(pts, sx) : pts;
  let d = "";
  let penDown = false;
  for (const p of thinned) {
    if (!Number.isFinite(p.y)) {
      penDown = false;
      continue;
    }
    d += `${penDown ? "L" : "M"}${r(sx(p.x))} ${r(sy(p.y))}`;
    penDown = true;
  }
  return d;
}

function thin(pts: XY[], sx: (x: number) => number): XY[] {
  const out: XY[] = [];
  let column = Number.NaN;
  let lo: XY | undefined;
  let hi: XY | undefined;
  const flush = (): void => {
    if (lo && hi) {
      if (lo === hi) out.push(lo);
      else if (lo.x <= hi.x) out.push(lo, hi);
      else out.push(hi, lo);
    }
    lo = hi = undefined;
  };
  for (const p of pts) {
    if (!Number.isFinite(p.y)) {
      flush();
      out.push(p); // keep the gap
      column = Number.NaN;
      continue;
    }
    const c = Math.round(sx(p.x));
    if (c !== column) {
      flush();
      column = c;
    }
    if (!lo || p.y < lo.y) lo = p;
    if (!hi || p.y > hi.y) hi = p;
  }
  flush();
  return out;
}

function summary(train: XY[], val: XY[]): string {
  const lastFinite = (s: XY[]): XY | undefined => [...s].reverse().find((p) => Number.isFinite(p.y));
  const parts: string[] = [];
  const t = lastFinite(train);
  const v = lastFinite(val);
  if (t) parts.push(`train ${t.y.toFixed(4)} at step ${t.x}`);
  if (v) parts.push(`val ${v.y.toFixed(4)} at step ${v.x}`);
  const bestVal = val.filter((p) => Number.isFinite(p.y)).reduce<XY | undefined>((b, p) => (!b || p.y < b.y ? p : b), undefined);
  if (bestVal && v && bestVal !== v) parts.push(`best val ${bestVal.y.toFixed(4)} at step ${bestVal.x}`);
  return parts.join("  ·  ");
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}
