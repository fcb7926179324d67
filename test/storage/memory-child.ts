/**
 * Child process of memory.test.ts: uploads `size` bytes of generated data through one store
 * and reports its resident memory before and during the upload as one JSON line. Run with
 * --expose-gc.
 *
 * Modes: `live` collects garbage before every sample (every 100 ms), so the peak is the memory
 * the upload holds; `raw` samples every 10 ms without collecting, so the peak also includes
 * garbage V8 has not collected yet (which depends on its heap limits, not on this code).
 *
 * argv: <target JSON> <credentials JSON> <size in bytes> <live|raw>
 */
import { openObjectStore } from "../../src/storage/index.ts";
import { parseTarget, type StorageCredentials, type TargetSpec } from "../../src/storage/target.ts";
import { generate } from "./data.ts";

const [spec, credentials, sizeArg, mode = "live"] = process.argv.slice(2);
const target = parseTarget(JSON.parse(spec ?? "{}") as TargetSpec);
const store = openObjectStore(target, JSON.parse(credentials ?? "{}") as StorageCredentials);
const size = Number(sizeArg);
const gc = (globalThis as { gc?: () => void }).gc;

// Warm up: load every module and open connections with one multi-part upload first.
await store.upload("memory/warm-up", generate(2 * target.partSize + 1).source);
await store.delete("memory/warm-up");
gc?.();
await new Promise((resolve) => setTimeout(resolve, 200));
gc?.();
const baseline = process.memoryUsage.rss();
const baselineBuffers = process.memoryUsage().arrayBuffers;

let peak = baseline;
let peakBuffers = baselineBuffers;
const sampler = setInterval(
  () => {
    if (mode === "live") gc?.();
    const usage = process.memoryUsage();
    peak = Math.max(peak, usage.rss);
    peakBuffers = Math.max(peakBuffers, usage.arrayBuffers);
  },
  mode === "live" ? 100 : 10,
);
const started = performance.now();
const data = generate(size);
// The executor always passes a signal; the guard's abort handling is part of what is measured.
const result = await store.upload("memory/big.bin", data.source, { signal: new AbortController().signal });
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
if (mode === "raw") peak = Math.max(peak, process.memoryUsage.rss());
const head = await store.head("memory/big.bin");
await store.delete("memory/big.bin");
await store.close();
process.stdout.write(
  `${JSON.stringify({
    provider: target.provider,
    mode,
    partSize: result.partSize,
    concurrency: target.concurrency,
    bytes: result.size,
    stored: head?.size,
    seconds,
    baselineRss: baseline,
    peakRss: peak,
    growth: peak - baseline,
    buffersGrowth: peakBuffers - baselineBuffers,
  })}\n`,
);
