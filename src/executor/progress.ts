/**
 * A progress line (bytes, MiB/s) on an interactive terminal while bytes stream. In a Job
 * stdout is not a terminal and nothing is printed, keeping Pod logs to the result line.
 */
export interface Progress {
  stop(): void;
}

export function startProgress(
  label: string,
  bytes: () => number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY) return { stop() {} };
  const started = Date.now();
  const render = (): void => {
    const b = bytes();
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const mib = b / 1024 / 1024;
    stream.write(`\r${label}: ${mib.toFixed(1)} MiB, ${(mib / seconds).toFixed(1)} MiB/s   `);
  };
  const timer = setInterval(render, 500);
  return {
    stop() {
      clearInterval(timer);
      render();
      stream.write("\n");
    },
  };
}
