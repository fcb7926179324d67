/** Markdown tables of the executor benchmark (what BENCHMARKS.md quotes). */
import type { ExecutorMeasured, Measured, ThroughputRow } from "./executor.ts";
import { MiB, median, sizeLabel, table } from "./measure.ts";

function mid(values: readonly Measured[]): number {
  return median(values.map((v) => v.mibps));
}

function spread(values: readonly Measured[]): string {
  if (values.length === 0) return "–";
  const m = mid(values);
  if (values.length === 1) return m.toFixed(0);
  const lo = Math.min(...values.map((v) => v.mibps));
  const hi = Math.max(...values.map((v) => v.mibps));
  return `${m.toFixed(0)} (${lo.toFixed(0)}–${hi.toFixed(0)})`;
}

function pct(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${((a / b) * 100).toFixed(0)}%` : "–";
}

/** (a) of a row: the slower of its two legs (medians); falls back to a row of the same provider/op/size. */
function physical(row: ThroughputRow, all: readonly ThroughputRow[]): { a: number; which: string } {
  const base =
    row.sourceLeg.length > 0
      ? row
      : all.find(
          (r) => r.provider === row.provider && r.op === row.op && r.size === row.size && r.sourceLeg.length > 0,
        );
  if (!base) return { a: Number.NaN, which: "–" };
  const s = mid(base.sourceLeg);
  const k = mid(base.sinkLeg);
  const sourceName = row.op === "backup" ? "source read" : "POST to source";
  const sinkName = row.op === "backup" ? "raw PUT" : "raw GET";
  return s <= k ? { a: s, which: sourceName } : { a: k, which: sinkName };
}

function peak(values: readonly ExecutorMeasured[]): number {
  return Math.max(...values.map((v) => v.peakRss));
}

function growth(values: readonly ExecutorMeasured[]): number {
  return Math.max(...values.map((v) => v.peakRss - v.idleRss));
}

export function throughputTable(rows: readonly ThroughputRow[]): string {
  return table(
    [
      "sink",
      "op",
      "size",
      "part × conc",
      "executor MiB/s",
      "(a) MiB/s (limited by)",
      "(a) legs: source / sink",
      "(b) MiB/s",
      "executor / (a)",
      "executor / (b)",
      "executor wall s",
    ],
    rows.map((row) => {
      const e = mid(row.executor);
      const { a, which } = physical(row, rows);
      const b = mid(row.minimal);
      const legs =
        row.sourceLeg.length > 0 ? `${spread(row.sourceLeg)} / ${spread(row.sinkLeg)}` : "(from the row above)";
      return [
        row.provider,
        row.op,
        sizeLabel(row.size),
        `${row.partSize / MiB} MiB × ${row.concurrency}`,
        spread(row.executor),
        Number.isFinite(a) ? `${a.toFixed(0)} (${which})` : "–",
        legs,
        spread(row.minimal),
        pct(e, a),
        pct(e, b),
        (median(row.executor.map((x) => x.wallMs)) / 1000).toFixed(1),
      ];
    }),
  );
}

export function memoryTable(rows: readonly ThroughputRow[]): string {
  return table(
    [
      "sink",
      "op",
      "size",
      "part × conc",
      "idle RSS MiB",
      "peak RSS (VmHWM) MiB",
      "growth MiB",
      "target: part × (conc+1) + 64 MiB",
    ],
    rows
      .filter((r) => r.executor.length > 0)
      .map((row) => {
        const limit = row.partSize * (row.concurrency + 1) + 64 * MiB;
        const g = growth(row.executor);
        return [
          row.provider,
          row.op,
          sizeLabel(row.size),
          `${row.partSize / MiB} MiB × ${row.concurrency}`,
          (median(row.executor.map((x) => x.idleRss)) / MiB).toFixed(0),
          (peak(row.executor) / MiB).toFixed(0),
          (g / MiB).toFixed(0),
          `${(limit / MiB).toFixed(0)} MiB: ${g <= limit ? "met" : "NOT met"}`,
        ];
      }),
  );
}
