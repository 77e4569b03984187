// A warm benchmark process that runs training steps on request: bench/train-step.ts or
// bench/pytorch_bench.py with --serve (it prints {"ready":true} after its warm-up, then one line of
// step times per request line N). Shared by bench/run.ts's paired measurement and bench/pair.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export class StepServer {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly proc: ChildProcess) {
    this.lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  }

  static async start(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<StepServer> {
    const server = new StepServer(spawn(cmd, args, { cwd, env, stdio: ["pipe", "pipe", "inherit"] }));
    const first = await server.next();
    if (!(JSON.parse(first) as { ready?: boolean }).ready) throw new Error(`${cmd} ${args.join(" ")}: not ready: ${first}`);
    return server;
  }

  private async next(): Promise<string> {
    const r = await this.lines.next();
    if (r.done) throw new Error("benchmark process ended early (see its error above)");
    return r.value;
  }

  /** run n steps; their times in ms */
  async steps(n: number): Promise<number[]> {
    this.proc.stdin?.write(`${n}\n`);
    return (JSON.parse(await this.next()) as { times: number[] }).times;
  }

  close(): void {
    this.proc.stdin?.end();
  }
}
