// The Look inside view: a prompt's tokens (boundaries and ids), every layer's and head's attention
// as heat maps (a canvas per head; hover or focus a token to see what it attends to in the chosen
// head), the top-5 next tokens and the parameter breakdown `minigpt analyze` prints.
import type { ModelWorker } from "./client.js";
import { byId, clearMessage, visible } from "./dom.js";
import type { InspectResult } from "./protocol.js";

/** pixels per cell of a head's heat map, capped so a long prompt still fits a phone */
const MAX_MAP_PX = 160;

export function insideView(worker: ModelWorker): void {
  const tokensBox = byId("tokens");
  const maps = byId("heatmaps");
  const layer = byId<HTMLSelectElement>("layer");
  const head = byId<HTMLSelectElement>("head");
  let result: InspectResult | null = null;

  byId("inspect").onclick = () => {
    clearMessage();
    worker.send({ type: "inspect", prompt: byId<HTMLInputElement>("inspect-prompt").value });
  };
  byId<HTMLInputElement>("inspect-prompt").onkeydown = (e) => {
    if (e.key === "Enter") byId("inspect").click();
  };

  const weights = (r: InspectResult, l: number, h: number): number[] => r.attention[l]?.[h] ?? [];

  const shadeTokens = (query: number | null): void => {
    if (!result) return;
    const w = weights(result, Number(layer.value), Number(head.value));
    const T = result.tokens.length;
    for (const [j, el] of Array.from(tokensBox.children).entries()) {
      const a = query === null ? 0 : (w[query * T + j] ?? 0);
      (el as HTMLElement).style.backgroundColor = query === null ? "" : `rgba(214, 39, 40, ${a.toFixed(3)})`;
      (el as HTMLElement).classList.toggle("query", j === query);
    }
  };

  const drawMaps = (r: InspectResult): void => {
    const T = r.tokens.length;
    const cell = Math.max(1, Math.floor(MAX_MAP_PX / T));
    maps.replaceChildren();
    for (let l = 0; l < r.nLayer; l++) {
      const row = document.createElement("div");
      row.className = "map-row";
      const label = document.createElement("span");
      label.textContent = `layer ${l}`;
      row.append(label);
      for (let h = 0; h < r.nHead; h++) {
        const canvas = document.createElement("canvas");
        canvas.width = canvas.height = cell * T;
        canvas.title = `layer ${l}, head ${h}`;
        canvas.setAttribute("role", "img");
        canvas.setAttribute("aria-label", `attention of layer ${l}, head ${h}`);
        canvas.classList.toggle("chosen", String(l) === layer.value && String(h) === head.value);
        const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
        const w = weights(r, l, h);
        for (let i = 0; i < T; i++)
          for (let j = 0; j <= i; j++) {
            ctx.fillStyle = `rgba(31, 119, 180, ${(w[i * T + j] ?? 0).toFixed(3)})`;
            ctx.fillRect(j * cell, i * cell, cell, cell);
          }
        canvas.onclick = () => {
          layer.value = String(l);
          head.value = String(h);
          drawMaps(r);
        };
        canvas.onmousemove = (e) => shadeTokens(Math.min(T - 1, Math.floor(e.offsetY / (canvas.clientHeight / T))));
        canvas.onmouseleave = () => shadeTokens(null);
        row.append(canvas);
      }
      maps.append(row);
    }
  };

  const fill = (select: HTMLSelectElement, n: number): void => {
    const keep = select.value;
    select.replaceChildren(...Array.from({ length: n }, (_, i) => new Option(String(i), String(i))));
    select.value = keep !== "" && Number(keep) < n ? keep : "0";
  };
  layer.onchange = head.onchange = () => result && drawMaps(result);
  // another model: what the view shows was the model before's
  worker.on("model", () => {
    result = null;
    for (const id of ["tokens", "heatmaps", "next", "analysis"]) byId(id).replaceChildren();
    byId("tokens-note").hidden = true;
  });

  worker.on("inspected", (m) => {
    const r = m.result;
    result = r;
    fill(layer, r.nLayer);
    fill(head, r.nHead);
    tokensBox.replaceChildren(
      ...r.tokens.map((t, i) => {
        const el = document.createElement("span");
        el.className = "token";
        el.tabIndex = 0;
        el.title = `token ${i}: id ${t.id}`;
        const text = document.createElement("span");
        text.textContent = visible(t.text);
        const id = document.createElement("small");
        id.textContent = String(t.id);
        el.append(text, id);
        el.onmouseenter = el.onfocus = () => shadeTokens(i);
        el.onmouseleave = el.onblur = () => shadeTokens(null);
        return el;
      }),
    );
    const note = byId("tokens-note");
    note.hidden = r.leftOut === 0;
    note.textContent = `The prompt's first ${r.leftOut === 1 ? "token is" : `${r.leftOut} tokens are`} left out: the model sees ${r.tokens.length} tokens at a time, its context.`;
    drawMaps(r);
    byId("next").replaceChildren(
      ...r.next.map((t) => {
        const li = document.createElement("li");
        li.textContent = `${visible(t.token)}  ${(100 * t.p).toFixed(1)}%`;
        return li;
      }),
    );
    // a line each, so that a long one wraps under its own start (see .analysis in style.css)
    byId("analysis").replaceChildren(
      ...r.analysis.split("\n").map((line) => {
        const el = document.createElement("div");
        el.textContent = line;
        return el;
      }),
    );
  });
}
