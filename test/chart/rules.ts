/**
 * The chart's alert rules as a plain Prometheus rule file: rendered by the real `helm template`
 * from templates/prometheusrule.yaml, so the PrometheusRule and the file shipped for
 * Prometheus without the operator (deploy/prometheus/openbao-backup-rules.yaml) never differ.
 *
 * `node test/chart/rules.ts --write` regenerates the shipped file; test/chart/alerts.test.ts
 * fails while it is out of step.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { dump, load } from "js-yaml";
import { projectRoot } from "../servers/catalog.ts";
import { helm, removeHelmHome } from "./helm.ts";

export const shippedRulesFile: string = join(projectRoot, "deploy", "prometheus", "openbao-backup-rules.yaml");

/** The values the shipped file is rendered with: scrape jobs `openbao-backup` and `openbao-backup-monitor`. */
export const shippedRuleValues: Readonly<Record<string, string | number | boolean>> = {
  "metrics.prometheusRule.operatorDown.selector": 'job="openbao-backup"',
  "metrics.prometheusRule.monitorDown.selector": 'job="openbao-backup-monitor"',
};

export interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

export interface RuleFile {
  readonly groups: { readonly name: string; readonly rules: Rule[] }[];
}

function isRuleFile(value: unknown): value is RuleFile {
  const groups = (value as { groups?: unknown } | null)?.groups;
  return Array.isArray(groups) && groups.every((g) => Array.isArray((g as { rules?: unknown }).rules));
}

/**
 * `spec` of the rendered PrometheusRule with `values` on top of the defaults: strings with
 * `--set-string`, numbers with `--set` (values.schema.json types them).
 */
export async function renderRules(values: Readonly<Record<string, string | number | boolean>> = {}): Promise<RuleFile> {
  const sets = Object.entries({ "metrics.prometheusRule.enabled": true, ...values }).flatMap(([k, v]) => [
    typeof v === "string" ? "--set-string" : "--set",
    `${k}=${v}`,
  ]);
  const text = await helm([
    "template",
    "openbao-backup",
    join(projectRoot, "deploy", "chart"),
    "--namespace",
    "openbao-backup-system",
    "--show-only",
    "templates/prometheusrule.yaml",
    ...sets,
  ]);
  const spec = (load(text) as { spec?: unknown } | null)?.spec;
  if (!isRuleFile(spec)) throw new Error(`helm rendered no rule groups:\n${text}`);
  return spec;
}

/** The text of the shipped file for `rules`. */
export function ruleFileText(rules: RuleFile): string {
  const header = [
    "# OpenBao backup alerts as a plain Prometheus rule file, for Prometheus without the",
    "# prometheus-operator (with it, use the chart's PrometheusRule: metrics.prometheusRule.enabled).",
    "# Scrape every operator replica's /metrics with `job_name: openbao-backup`, the freshness",
    "# monitor's (`bao-backup monitor`) with `job_name: openbao-backup-monitor`, and keep the",
    "# metrics' own labels (`honor_labels: true`). Generated from deploy/chart/templates/prometheusrule.yaml",
    "# by `node test/chart/rules.ts --write`; test/chart/alerts.test.ts checks it is in step.",
    "",
  ].join("\n");
  return header + dump(rules, { lineWidth: -1, noRefs: true });
}

if (import.meta.main) {
  try {
    const text = ruleFileText(await renderRules(shippedRuleValues));
    if (process.argv.includes("--write")) {
      writeFileSync(shippedRulesFile, text);
      process.stdout.write(`wrote ${shippedRulesFile}\n`);
    } else process.stdout.write(text);
  } finally {
    removeHelmHome();
  }
}
