/**
 * A progress line for long-running commands: a bar with rate and ETA,
 * redrawn in place on a terminal, and a plain line every 10% otherwise (CI
 * logs stay readable).
 */
export interface Progress {
  tick(n?: number): void;
  done(note?: string): void;
}

export function createProgress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = performance.now();
  const tty = stream.isTTY === true;
  let count = 0;
  let lastDraw = 0;
  let lastDecile = -1;

  const line = (): string => {
    const seconds = (performance.now() - started) / 1000;
    const rate = count / Math.max(seconds, 1e-3);
    const fraction = total === 0 ? 1 : count / total;
    const width = 24;
    const filled = Math.round(fraction * width);
    const eta = rate > 0 && count < total ? `, eta ${formatSeconds((total - count) / rate)}` : "";
    return `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${count}/${total} (${(fraction * 100).toFixed(0)}%) ${rate.toFixed(0)}/s${eta}`;
  };

  return {
    tick(n = 1) {
      count += n;
      const now = performance.now();
      if (tty) {
        if (now - lastDraw > 100 || count >= total) {
          stream.write(`\r${line()}\x1b[K`);
          lastDraw = now;
        }
        return;
      }
      const decile = total === 0 ? 10 : Math.floor((count / total) * 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        stream.write(`${line()}\n`);
      }
    },
    done(note) {
      const seconds = (performance.now() - started) / 1000;
      const summary = `${label}: ${count}/${total} in ${formatSeconds(seconds)}${note ? ` (${note})` : ""}`;
      stream.write(tty ? `\r${summary}\x1b[K\n` : `${summary}\n`);
    },
  };
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Runs `work` over `items` with at most `concurrency` in flight; results in input order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!, i);
    }
  });
  await Promise.all(lanes);
  return results;
}
