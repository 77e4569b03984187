/** The process entry of the `minigpt` bin (bin/minigpt.js runs the compiled copy of this file). */
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
