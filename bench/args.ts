/** `--name value` or `--name=value` from the command line of a benchmark script, else `fallback`. */
export function arg(name: string, fallback: string): string {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === `--${name}`) return argv[i + 1] ?? fallback;
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return fallback;
}

/**
 * Exit with a clear message (status 2) when the command line has a flag the script does not know,
 * or a word that is not a flag's value: a mistyped `--thread 2` would otherwise be ignored silently
 * and the benchmark would measure something else than asked. `valued` flags take a value
 * (`--name v` or `--name=v`), `switches` do not.
 */
export function expectArgs(script: string, valued: string[], switches: string[] = [], positional = false): void {
  const argv = process.argv.slice(2);
  const flags = [...valued.map((n) => `--${n} VALUE`), ...switches.map((n) => `--${n}`)].join(" ");
  const known = flags === "" ? "it takes none" : `flags: ${flags}`;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const name = a.startsWith("--") ? (a.slice(2).split("=")[0] as string) : null;
    if (name === null) {
      if (positional) continue;
      console.error(`${script}: unexpected argument "${a}" (${known})`);
      process.exit(2);
    }
    if (switches.includes(name) && !a.includes("=")) continue;
    if (valued.includes(name)) {
      if (!a.includes("=")) {
        if (i + 1 >= argv.length) {
          console.error(`${script}: --${name} needs a value`);
          process.exit(2);
        }
        i++;
      }
      continue;
    }
    console.error(`${script}: unknown flag ${a} (${known})`);
    process.exit(2);
  }
}
