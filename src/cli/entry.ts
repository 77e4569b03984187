/** The process entry of the `minigpt` bin (bin/minigpt.js runs the compiled copy of this file). */
import { main } from "./main.js";

// `minigpt generate | head` closes the pipe early: that is the reader's choice, not an error; what
// was printed is all the output wanted, so the command ends (every command writes its files first).
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});
// `minigpt train ... 2>&1 | head`: the reader of the progress lines went away, not the work's reason
// to be; the run keeps training and saving (a run ended there would leave a half-trained folder and
// an OUT.replaced-PID behind), its later lines unseen
process.stderr.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") return;
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
