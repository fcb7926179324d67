/**
 * A real Prometheus for tests: scrapes the given static targets every `scrapeInterval`,
 * evaluates the given rule file every `evaluationInterval`, stores in a scratch TSDB and
 * listens on 127.0.0.1. Read through its HTTP API (`/api/v1/query`, `/api/v1/alerts`): the
 * same answers a person's Grafana or Alertmanager would get.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { dump } from "js-yaml";
import { serverBinary } from "./catalog.ts";
import { freePort, hostPort } from "./ports.ts";
import { type ManagedProcess, removeScratch, scratchDir, startProcess, waitFor } from "./process.ts";

export interface ScrapeJob {
  readonly job: string;
  /** host:port of each target. */
  readonly targets: readonly string[];
}

export interface PrometheusOptions {
  readonly jobs: readonly ScrapeJob[];
  /** A Prometheus rule file's content (`groups: …`). */
  readonly rules: unknown;
  readonly scrapeInterval?: string;
  readonly evaluationInterval?: string;
}

export type AlertState = "pending" | "firing";

export interface ActiveAlert {
  readonly name: string;
  readonly state: AlertState;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PrometheusServer {
  readonly url: string;
  readonly process: ManagedProcess;
  /** Every pending or firing alert. */
  alerts(): Promise<ActiveAlert[]>;
  /** An instant query; the vector's samples (a scalar becomes one sample without labels). */
  query(expr: string): Promise<Sample[]>;
  /** Resolves once every target of every job was scraped successfully at least once. */
  waitForTargets(): Promise<void>;
  stop(): Promise<void>;
}

interface ApiResponse<T> {
  status: string;
  data?: T;
  error?: string;
}

export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const root = scratchDir("prometheus");
  const port = await freePort();
  const rulesPath = join(root, "rules.yaml");
  const configPath = join(root, "prometheus.yaml");
  writeFileSync(rulesPath, dump(options.rules, { lineWidth: -1, noRefs: true }));
  writeFileSync(
    configPath,
    dump({
      global: {
        scrape_interval: options.scrapeInterval ?? "1s",
        scrape_timeout: "1s",
        evaluation_interval: options.evaluationInterval ?? "1s",
      },
      rule_files: [rulesPath],
      scrape_configs: options.jobs.map((j) => ({
        job_name: j.job,
        // The metrics carry the OpenBaoCluster's own `namespace` and `cluster` labels.
        honor_labels: true,
        static_configs: [{ targets: j.targets }],
      })),
    }),
  );
  const proc = startProcess({
    name: "prometheus",
    command: serverBinary("prometheus"),
    args: [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(root, "data")}`,
      `--web.listen-address=${hostPort("127.0.0.1", port)}`,
      "--log.level=warn",
    ],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root },
    logDir: root,
  });
  const url = `http://${hostPort("127.0.0.1", port)}`;
  await waitFor(
    async () => {
      const res = await fetch(`${url}/-/ready`);
      return res.ok;
    },
    { what: `Prometheus to be ready on ${url}`, processes: [proc] },
  );

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as ApiResponse<T>;
    if (body.status !== "success" || body.data === undefined) {
      throw new Error(`Prometheus ${path}: ${res.status} ${body.error ?? "no data"}`);
    }
    return body.data;
  };

  return {
    url,
    process: proc,
    async alerts() {
      const data = await api<{
        alerts: { labels: Record<string, string>; annotations: Record<string, string>; state: string }[];
      }>("/api/v1/alerts");
      return data.alerts
        .filter((a): a is typeof a & { state: AlertState } => a.state === "pending" || a.state === "firing")
        .map((a) => ({ name: a.labels.alertname ?? "", state: a.state, labels: a.labels, annotations: a.annotations }));
    },
    async query(expr) {
      const data = await api<
        | { resultType: "vector"; result: { metric: Record<string, string>; value: [number, string] }[] }
        | { resultType: "scalar"; result: [number, string] }
      >(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType === "scalar") return [{ metric: {}, value: Number(data.result[1]) }];
      return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
    },
    async waitForTargets() {
      await waitFor(
        async () => {
          const data = await api<{ activeTargets: { health: string }[] }>("/api/v1/targets?state=active");
          const expected = options.jobs.reduce((n, j) => n + j.targets.length, 0);
          return data.activeTargets.length === expected && data.activeTargets.every((t) => t.health === "up");
        },
        { what: "Prometheus to scrape every target", processes: [proc], timeoutMs: 30_000 },
      );
    },
    async stop() {
      await proc.stop();
      removeScratch(root);
    },
  };
}
