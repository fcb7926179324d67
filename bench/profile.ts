/**
 * Summarises V8 CPU profiles (`--cpu-prof`): self time by function and by module (a package
 * under node_modules, a file of src/, or a Node internal), so a profile can be quoted in
 * BENCHMARKS.md. `node bench/profile.ts <file.cpuprofile | dir> [top]`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function moduleOf(url: string): string {
  if (url === "") return "(native / VM)";
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm?.[1]) return nm[1];
  const src = /\/work\/main\/(.+)$/.exec(url.replace(/^file:\/\//, ""));
  if (src?.[1]) return src[1];
  if (url.startsWith("node:")) return url;
  return url;
}

export function summarise(profile: CpuProfile, top = 20): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  let total = 0;
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const f = node.callFrame;
    if (f.functionName === "(idle)" || f.functionName === "(program)" || f.functionName === "(garbage collector)") {
      byFunction.set(f.functionName, (byFunction.get(f.functionName) ?? 0) + us);
      byModule.set(f.functionName, (byModule.get(f.functionName) ?? 0) + us);
      continue;
    }
    const name = `${f.functionName || "(anonymous)"} ${moduleOf(f.url)}:${f.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const mod = moduleOf(f.url);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
  }
  const rows = (m: Map<string, number>): string =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([k, v]) => `  ${((v / total) * 100).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`,
      )
      .join("\n");
  return `total sampled ${(total / 1000).toFixed(0)} ms\nby module:\n${rows(byModule)}\nby function (self time):\n${rows(byFunction)}`;
}

if (import.meta.main) {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write("usage: node bench/profile.ts <file.cpuprofile | dir> [top]\n");
    process.exit(1);
  }
  const top = Number(process.argv[3] ?? "20");
  const files = statSync(target).isDirectory()
    ? readdirSync(target)
        .filter((f) => f.endsWith(".cpuprofile"))
        .map((f) => join(target, f))
    : [target];
  for (const file of files) {
    process.stdout.write(`== ${file}\n${summarise(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, top)}\n\n`);
  }
}
