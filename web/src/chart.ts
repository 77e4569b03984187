// The Train view's two live charts (uPlot): train and validation loss by step; learning rate and
// tokens/s by step. Sized to their boxes (fixed heights in style.css, so nothing moves as points
// arrive; the plot gives up the room its legend takes, two lines on a phone) and redrawn at most
// once per DRAW_MS however fast the metrics come: a redraw goes over every point of the run, and the
// page's main thread shares the machine's cores with training.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Metric } from "./protocol.js";

/** the most often the charts are redrawn while points arrive */
const DRAW_MS = 1000;

/**
 * A legend's value: at the step under the cursor, else (the cursor off the chart, uPlot's idx null)
 * the newest one, so that the legend says where the run is rather than "--"; a series measured on
 * some steps only (validation loss) gives its newest value at or before the step; "--" before any.
 */
function legendValue(ys: readonly (number | null)[], idx: number | null, format: (y: number) => string): string {
  for (let i = Math.min(idx ?? ys.length - 1, ys.length - 1); i >= 0; i--) {
    const y = ys[i];
    if (y !== null && y !== undefined) return format(y);
  }
  return "--";
}

/** a tick value in thousands when it is one, to a tenth: 25000 -> "25k", 2500 -> "2.5k" */
const thousands = (x: number): string => (Math.abs(x) >= 1000 ? `${Math.round(x / 100) / 10}k` : String(x));

/**
 * The plot's height in its box: the box's fixed height less its legend's, one line wide or two where
 * a narrow box (a phone) wraps it (30 px before the legend exists)
 */
function plotHeight(box: HTMLElement): number {
  const legend = box.querySelector<HTMLElement>(".u-legend");
  return box.clientHeight - Math.max(30, legend?.offsetHeight ?? 0);
}

/** a loss as the progress line writes it */
const loss = (y: number): string => y.toFixed(3);

export class TrainCharts {
  private readonly loss: uPlot;
  private readonly rate: uPlot;
  private steps: number[] = [];
  private lossY: (number | null)[] = [];
  private valY: (number | null)[] = [];
  private lrY: number[] = [];
  private speedY: number[] = [];
  /** a redraw is due (setTimeout's id), or 0 */
  private pending = 0;
  private drawnAt = 0;

  constructor(lossBox: HTMLElement, rateBox: HTMLElement) {
    const axis = { stroke: "#555", grid: { stroke: "#eee" } };
    this.loss = new uPlot(
      {
        width: lossBox.clientWidth,
        height: plotHeight(lossBox),
        scales: { x: { time: false } },
        axes: [
          { ...axis, label: "step" },
          { ...axis, label: "loss" },
        ],
        series: [
          { label: "step", value: (_u, _v, _s, idx) => legendValue(this.steps, idx, String) },
          { label: "train loss", stroke: "#1f77b4", width: 1.5, value: (_u, _v, _s, idx) => legendValue(this.lossY, idx, loss) },
          {
            label: "val loss",
            stroke: "#d62728",
            width: 2,
            spanGaps: true,
            points: { show: true, size: 5 },
            value: (_u, _v, _s, idx) => legendValue(this.valY, idx, loss),
          },
        ],
      },
      [[], [], []],
      lossBox,
    );
    this.rate = new uPlot(
      {
        width: rateBox.clientWidth,
        height: plotHeight(rateBox),
        scales: { x: { time: false }, lr: { auto: true }, speed: { auto: true } },
        axes: [
          { ...axis, label: "step" },
          { ...axis, scale: "lr", label: "learning rate", values: (_u, v) => v.map((x) => x.toExponential(0)) },
          // "100k", not "100,000": a wide tick value runs into the axis label beside it
          { ...axis, scale: "speed", side: 1, label: "tokens/s", grid: { show: false }, values: (_u, v) => v.map(thousands) },
        ],
        series: [
          { label: "step", value: (_u, _v, _s, idx) => legendValue(this.steps, idx, String) },
          {
            label: "lr",
            scale: "lr",
            stroke: "#2ca02c",
            width: 1.5,
            value: (_u, _v, _s, idx) => legendValue(this.lrY, idx, (y) => y.toExponential(2)),
          },
          {
            label: "tokens/s",
            scale: "speed",
            stroke: "#9467bd",
            width: 1,
            value: (_u, _v, _s, idx) => legendValue(this.speedY, idx, (y) => Math.round(y).toLocaleString()),
          },
        ],
      },
      [[], [], []],
      rateBox,
    );
    const fit = () => {
      this.loss.setSize({ width: lossBox.clientWidth, height: plotHeight(lossBox) });
      this.rate.setSize({ width: rateBox.clientWidth, height: plotHeight(rateBox) });
    };
    // the legends exist now; they wrap or unwrap as the box's width and their values change
    const resized = new ResizeObserver(fit);
    resized.observe(lossBox);
    for (const box of [lossBox, rateBox]) {
      const legend = box.querySelector(".u-legend");
      if (legend) resized.observe(legend);
    }
  }

  /** replace everything (a run restored, or a new one) */
  reset(metrics: readonly Metric[]): void {
    this.steps = [];
    this.lossY = [];
    this.valY = [];
    this.lrY = [];
    this.speedY = [];
    this.add(metrics);
    this.drawNow();
  }

  /** new points, drawn within DRAW_MS */
  push(metrics: readonly Metric[]): void {
    this.add(metrics);
    if (this.pending) return;
    const wait = Math.max(0, this.drawnAt + DRAW_MS - performance.now());
    this.pending = window.setTimeout(() => requestAnimationFrame(() => this.drawNow()), wait);
  }

  private add(metrics: readonly Metric[]): void {
    for (const m of metrics) {
      this.steps.push(m.step);
      this.lossY.push(m.loss);
      this.valY.push(m.valLoss);
      this.lrY.push(m.lr);
      this.speedY.push(m.tokensPerS);
    }
  }

  /** draw what has arrived now (the run paused or stopped: the chart shows its last step at once) */
  drawNow(): void {
    clearTimeout(this.pending);
    this.pending = 0;
    this.drawnAt = performance.now();
    this.loss.setData([this.steps, this.lossY, this.valY]);
    this.rate.setData([this.steps, this.lrY, this.speedY]);
    this.describe();
  }

  /** the charts' text alternative (screen readers; the tests read it too): where the loss started and is now */
  private describe(): void {
    const n = this.steps.length;
    const box = this.loss.root.parentElement as HTMLElement;
    if (n === 0) {
      box.setAttribute("aria-label", "training loss chart: no steps yet");
      return;
    }
    const val = this.valY.filter((v): v is number => v !== null);
    const at = (i: number) => `step ${this.steps[i]} loss ${(this.lossY[i] as number).toFixed(3)}`;
    box.setAttribute(
      "aria-label",
      `training loss chart: ${at(0)}, ${at(n - 1)}${val.length > 0 ? `; validation loss ${(val[0] as number).toFixed(3)} first, ${(val.at(-1) as number).toFixed(3)} last` : ""}`,
    );
  }
}
