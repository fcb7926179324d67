/**
 * `npm run bench`: throughput and memory benchmarks (BENCHMARKS.md). Not available yet: they
 * land with the benchmarks issue.
 */
process.stderr.write("npm run bench: not available yet.\n");
process.exitCode = 1;
