/**
 * Messages that name a setting, written once for every front end. The library writes
 *
 *   said`${setting("minLr")} ${minLr} is above ${setting("lr")} ${lr}: the decay would raise the learning rate`
 *
 * and words it with the settings' own names (TrainConfig keys and train() options: "minLr 0.01 is
 * above lr 0.001: ..."); a front end words it with its names for them: the CLI with its flags
 * ("--min-lr 0.01 is above --lr 0.001: ...", src/cli/wording.ts). So library code never speaks in
 * command-line flags, and the CLI's messages stay its own.
 */

/** a setting named in a message: a TrainConfig key (minLr) or a train() option (resume, overwrite) */
interface Setting {
  readonly setting: string;
}

export function setting(name: string): Setting {
  return { setting: name };
}

function isSetting(v: unknown): v is Setting {
  return typeof v === "object" && v !== null && typeof (v as Setting).setting === "string";
}

/** Text with the settings it names kept apart, to be worded by whoever shows it. */
export class Said {
  constructor(readonly parts: readonly (string | Setting)[]) {}

  /** the text, each setting named by `name` (by default its own name) */
  words(name: (setting: string) => string = (s) => s): string {
    return this.parts.map((p) => (typeof p === "string" ? p : name(p.setting))).join("");
  }

  toString(): string {
    return this.words();
  }
}

/** A message for the user: plain text, or text that names settings. */
export type Message = string | Said;

/** said`...`: a template whose ${setting(...)} values (also those inside a nested Said) stay settings */
export function said(strings: TemplateStringsArray, ...values: unknown[]): Said {
  const parts: (string | Setting)[] = [];
  strings.forEach((s, i) => {
    parts.push(s);
    if (i >= values.length) return;
    const v = values[i];
    if (isSetting(v)) parts.push(v);
    else if (v instanceof Said) parts.push(...v.parts);
    else parts.push(String(v));
  });
  return new Said(parts);
}
