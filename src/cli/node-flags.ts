/**
 * Node's flags in the product image's ENTRYPOINT (Dockerfile), so every process of the image
 * has them: the operator, the monitor, and each backup, restore and drill Job's executor.
 * test/unit/node-image.test.ts holds the Dockerfile to this list; the node tier's image
 * (test/node/image.ts) and the bench's executor (bench/executor.ts) use it as it is.
 *
 * `--initial-old-space-size=64` (BENCHMARKS.md, finding 11): the executor's live JavaScript
 * heap is ≈ 15 MiB, and V8 kept the old generation's limit so tightly around it that each
 * megabyte promoted started a mark-compact — 100–470 per backup instead of 1–2, about twice
 * the CPU per GiB. That happened in about half of the runs with V8's default heap limit, and in
 * every run with the limit V8 derives inside the Job's 306 MiB memory limit (259 MiB; emulated
 * with `--max-old-space-size=256`: 9 of 9 backups at 10.6–12.3 CPU s/GiB, against 4.9–5.6 with
 * this flag; restores 6.6–6.8 against 3.7–4.4). It cannot go in the Job's NODE_OPTIONS, which Node refuses it in, hence the ENTRYPOINT.
 */
export const imageNodeFlags = ["--enable-source-maps", "--initial-old-space-size=64"] as const;
