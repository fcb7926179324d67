/** Markdown tables of the executor benchmark (what BENCHMARKS.md quotes). */
import { type DestinationsRow, sinkNames } from "./destinations.ts";
import type { ExecutorMeasured, Measured, ThroughputRow } from "./executor.ts";
import { cpuPerGiB, MiB, median, sizeLabel, table } from "./measure.ts";

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

/** Median CPU s/GiB of some runs, with the range: "3.1 (2.9–3.4)"; "–" without CPU figures. */
function cpuSpread(values: readonly Measured[]): string {
  const each = values.map(cpuPerGiB).filter(Number.isFinite);
  if (each.length === 0) return "–";
  const m = median(each).toFixed(2);
  if (each.length === 1) return m;
  return `${m} (${Math.min(...each).toFixed(2)}–${Math.max(...each).toFixed(2)})`;
}

/** Highest peak RSS (VmHWM) of some runs, MiB; "–" without memory figures. */
function peakSpread(values: readonly Measured[]): string {
  const each = values.map((v) => v.peakRss).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return each.length === 0 ? "–" : (Math.max(...each) / MiB).toFixed(0);
}

/**
 * CPU seconds (user + system, every thread) per GiB moved and peak RSS, for the executor and
 * every baseline process of the same row: the steady figures when the machine is shared.
 * (a)'s legs are separate processes (backup: source read / raw PUT; restore: POST to the source
 * / raw GET), so a raw copy of the bytes costs their sum.
 */
export function cpuTable(rows: readonly ThroughputRow[]): string {
  return table(
    [
      "sink",
      "op",
      "size",
      "part × conc",
      "executor CPU s/GiB",
      "(b) CPU s/GiB",
      "(a) legs CPU s/GiB: source / sink",
      "executor peak RSS MiB",
      "(b) peak RSS MiB",
      "(a) legs peak RSS MiB: source / sink",
    ],
    rows
      .filter((r) => r.executor.length > 0)
      .map((row) => [
        row.provider,
        row.op,
        sizeLabel(row.size),
        `${row.partSize / MiB} MiB × ${row.concurrency}`,
        cpuSpread(row.executor),
        cpuSpread(row.minimal),
        row.sourceLeg.length > 0 ? `${cpuSpread(row.sourceLeg)} / ${cpuSpread(row.sinkLeg)}` : "–",
        peakSpread(row.executor),
        peakSpread(row.minimal),
        row.sourceLeg.length > 0 ? `${peakSpread(row.sourceLeg)} / ${peakSpread(row.sinkLeg)}` : "–",
      ]),
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

/** "MinIO + fake-gcs-server" */
function destinationsLabel(row: DestinationsRow): string {
  return row.destinations.map((p) => sinkNames[p]).join(" + ");
}

/** The slowest of the row's destinations when each was measured alone, at the same size (medians). */
function slowestAlone(row: DestinationsRow, all: readonly DestinationsRow[]): { mibps: number; which: string } {
  let slowest = { mibps: Number.NaN, which: "–" };
  for (const p of row.destinations) {
    const alone = all.find((r) => r.size === row.size && r.destinations.length === 1 && r.destinations[0] === p);
    const m = alone ? mid(alone.executor) : Number.NaN;
    if (Number.isFinite(m) && !(m >= slowest.mibps)) slowest = { mibps: m, which: sinkNames[p] };
  }
  return slowest;
}

/** Several destinations: throughput against the slowest destination alone, wall and CPU seconds. */
export function destinationsThroughputTable(rows: readonly DestinationsRow[]): string {
  return table(
    [
      "destinations",
      "size",
      "part × conc",
      "executor MiB/s",
      "slowest alone MiB/s",
      "executor / slowest alone",
      "wall s",
      "CPU s (user+sys)",
    ],
    rows.map((row) => {
      const e = mid(row.executor);
      const slowest = slowestAlone(row, rows);
      const several = row.destinations.length > 1;
      return [
        destinationsLabel(row),
        sizeLabel(row.size),
        `${row.partSize / MiB} MiB × ${row.concurrency}`,
        spread(row.executor),
        several ? `${slowest.mibps.toFixed(0)} (${slowest.which})` : "–",
        several ? pct(e, slowest.mibps) : "–",
        (median(row.executor.map((x) => x.wallMs)) / 1000).toFixed(1),
        (median(row.executor.map((x) => x.cpuMs ?? Number.NaN)) / 1000).toFixed(2),
      ];
    }),
  );
}

/**
 * Several destinations: memory, and what each added destination costs over the same main target
 * alone against its expected part buffers, partSize × (concurrency + 1).
 */
export function destinationsMemoryTable(rows: readonly DestinationsRow[]): string {
  return table(
    [
      "destinations",
      "size",
      "idle RSS MiB",
      "peak RSS (VmHWM) MiB",
      "growth MiB",
      "growth over the main target alone MiB",
      "expected: (N−1) × part × (conc+1) MiB",
      "target: N × part × (conc+1) + 64 MiB",
    ],
    rows
      .filter((r) => r.executor.length > 0)
      .map((row) => {
        const n = row.destinations.length;
        const buffers = row.partSize * (row.concurrency + 1);
        const g = growth(row.executor);
        const alone = rows.find(
          (r) => r.size === row.size && r.destinations.length === 1 && r.destinations[0] === row.destinations[0],
        );
        const added = n > 1 && alone && alone.executor.length > 0 ? g - growth(alone.executor) : Number.NaN;
        const limit = n * buffers + 64 * MiB;
        return [
          destinationsLabel(row),
          sizeLabel(row.size),
          (median(row.executor.map((x) => x.idleRss)) / MiB).toFixed(0),
          (peak(row.executor) / MiB).toFixed(0),
          (g / MiB).toFixed(0),
          Number.isFinite(added) ? `${added >= 0 ? "+" : "−"}${Math.abs(added / MiB).toFixed(0)}` : "–",
          n > 1 ? `${(((n - 1) * buffers) / MiB).toFixed(0)}` : "–",
          `${(limit / MiB).toFixed(0)} MiB: ${g <= limit ? "met" : "NOT met"}`,
        ];
      }),
  );
}
