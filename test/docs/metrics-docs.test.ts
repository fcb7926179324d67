/**
 * Issue 16, docs: what docs/metrics-and-alerts.md, docs/troubleshooting.md and the Grafana
 * dashboard say about metrics, alerts and conditions is what the code and the chart do.
 *
 * - Metrics: every metric the code registers (the operator's leader — backups, restores and
 *   restore drills —, every operator replica, the freshness monitor: each source instantiated
 *   into a registry of its own) has a row on the
 *   metrics page with its type, labels and exporting process; every `openbao_*` name in the
 *   docs, the alert rules and the dashboard is one the code exports.
 * - Alerts: every alert of templates/prometheusrule.yaml is in the alerts table with its values
 *   key, every default of values.yaml and its severity, and its runbook anchor is a heading of
 *   the troubleshooting page.
 * - Conditions: the conditions table equals `conditionReasons` (condition, status, reason);
 *   every `Condition=Status … reason X` statement holds; the blocked-reason table lists every
 *   `BlockedReason`; every CamelCase code the pages name exists in the code; no page calls
 *   `BackupBlocked` a reason of `BackupHealthy`.
 * - Dashboard: only exported metrics, a Prometheus data source variable, and the chart renders
 *   it as a ConfigMap for Grafana's sidecar only when `metrics.dashboard.enabled`.
 *
 * Every check is a function returning its problems; each is also run on a wrong input first,
 * so a check that cannot fail is itself a failure.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, describe, test } from "node:test";
import { load } from "js-yaml";
import { Registry } from "prom-client";
import { BlockedReason, Condition, type ConditionType, conditionReasons } from "../../src/api/constants.ts";
import { backupMetrics } from "../../src/backup/metrics.ts";
import { drillMetrics } from "../../src/drill/manager/metrics.ts";
import { monitorMetrics } from "../../src/monitor/metrics.ts";
import { operatorLeaderGauge, runtimeMetrics } from "../../src/observability/metrics.ts";
import { restoreMetrics } from "../../src/restore/metrics.ts";
import { removeHelmHome, render } from "../chart/helm.ts";
import { projectRoot } from "../servers/catalog.ts";

// ── the sources ────────────────────────────────────────────────────────────────────────────

const read = (...path: string[]): string => readFileSync(join(projectRoot, ...path), "utf8");
const metricsPage = read("docs", "metrics-and-alerts.md");
const troubleshooting = read("docs", "troubleshooting.md");
const ruleTemplate = read("deploy", "chart", "templates", "prometheusrule.yaml");
const dashboardText = read("deploy", "chart", "dashboards", "openbao-backup.json");
const valuesText = read("deploy", "chart", "values.yaml");

function markdownFiles(): string[] {
  const out = [join(projectRoot, "README.md"), join(projectRoot, "deploy", "chart", "README.md")];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".md")) out.push(path);
    }
  };
  walk(join(projectRoot, "docs"));
  return out.sort();
}

/** Markdown without its fenced blocks (prose and tables only). */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```\s*$/gm, "");
}

/** The cells of a table row, trimmed; undefined for a line that is not one. */
function cells(line: string): string[] | undefined {
  const t = line.trim();
  if (!t.startsWith("|") || !t.endsWith("|")) return undefined;
  return t
    .slice(1, -1)
    .split("|")
    .map((c) => c.trim());
}

/** The text of one `## ` section (up to the next `## ` heading), by its heading's start. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`## ${heading}`));
  assert.ok(start >= 0, `a section "## ${heading}…"`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

const unquote = (cell: string): string => cell.replace(/^`|`$/g, "");

// ── metrics ────────────────────────────────────────────────────────────────────────────────

type Process = "leader" | "every replica" | "monitor";

interface ExportedMetric {
  readonly type: string;
  readonly labels: readonly string[];
  readonly by: ReadonlySet<Process>;
}

/**
 * Every metric the code registers, from the registries of the three kinds of process. The
 * leader's sources each get a registry of their own (in the operator they share one, where a
 * clash of names would throw): one source's metric cannot hide another's.
 */
function exportedMetrics(): Map<string, ExportedMetric> {
  const leader = new Registry();
  backupMetrics(leader);
  restoreMetrics(leader);
  const drills = new Registry();
  drillMetrics(drills);
  const replica = new Registry();
  operatorLeaderGauge(replica, () => true);
  runtimeMetrics(replica);
  const monitor = new Registry();
  monitorMetrics(monitor);
  const out = new Map<string, { type: string; labels: string[]; by: Set<Process> }>();
  for (const [process, registry] of [
    ["leader", leader],
    ["leader", drills],
    ["every replica", replica],
    ["monitor", monitor],
  ] as const) {
    for (const metric of registry.getMetricsAsArray()) {
      const names = (metric as unknown as { labelNames?: unknown }).labelNames;
      const labels = Array.isArray(names) ? names.map(String) : [];
      const known = out.get(metric.name);
      if (known) {
        assert.equal(known.type, String(metric.type), `${metric.name}: one type in every process`);
        assert.deepEqual(known.labels, labels, `${metric.name}: one set of labels in every process`);
        known.by.add(process);
      } else out.set(metric.name, { type: String(metric.type), labels, by: new Set([process]) });
    }
  }
  return out;
}

interface MetricRow {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
  readonly by: readonly string[];
}

/** Rows `| \`name\` | type | labels | exported by | meaning |` of the metric tables. */
function metricRows(markdown: string): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const line of prose(markdown).split("\n")) {
    const c = cells(line);
    if (!c || c.length < 5) continue;
    const [name = "", type = "", labels = "", by = ""] = c;
    if (!/^`[a-z_:]+`$/.test(name) || !/^(counter|gauge|histogram|summary)$/.test(type)) continue;
    rows.push({
      name: unquote(name),
      type,
      labels: labels === "—" ? [] : labels.split(",").map((l) => unquote(l.trim())),
      by: by.split(",").map((p) => p.trim()),
    });
  }
  return rows;
}

/** Where the rows and the registered metrics differ. */
function metricRowProblems(rows: readonly MetricRow[], exported: ReadonlyMap<string, ExportedMetric>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    if (seen.has(row.name)) problems.push(`${row.name}: more than one row`);
    seen.add(row.name);
    const metric = exported.get(row.name);
    if (!metric) {
      problems.push(`${row.name}: documented but not registered by the code`);
      continue;
    }
    if (row.type !== metric.type) problems.push(`${row.name}: documented as ${row.type}, is a ${metric.type}`);
    if ([...row.labels].sort().join() !== [...metric.labels].sort().join()) {
      problems.push(`${row.name}: documented labels [${row.labels.join(", ")}], has [${metric.labels.join(", ")}]`);
    }
    if ([...row.by].sort().join() !== [...metric.by].sort().join()) {
      problems.push(`${row.name}: documented as exported by ${row.by.join(", ")}, is by ${[...metric.by].join(", ")}`);
    }
  }
  for (const name of exported.keys()) if (!seen.has(name)) problems.push(`${name}: registered but has no row`);
  return problems;
}

/** Every `openbao_…` name in a text. A name ending in `_` (`openbao_backup_*`) is a prefix. */
function openbaoNames(text: string): string[] {
  return [...new Set([...text.matchAll(/\bopenbao_[a-z_]+/g)].map((m) => m[0]))];
}

/** The names that no exported series carries (histograms: `_bucket`, `_sum`, `_count`). */
function unexported(names: readonly string[], exported: ReadonlyMap<string, ExportedMetric>): string[] {
  const series = new Set<string>();
  for (const [name, metric] of exported) {
    series.add(name);
    if (metric.type === "histogram" || metric.type === "summary") {
      for (const suffix of ["_bucket", "_sum", "_count"]) series.add(`${name}${suffix}`);
    }
  }
  return names.filter((n) => (n.endsWith("_") ? ![...series].some((s) => s.startsWith(n)) : !series.has(n)));
}

const promqlWords = new Set([
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "inf",
  "nan",
]);

/** The metric names a PromQL expression reads (Grafana variables and label matchers removed). */
function metricsOfExpr(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\$\{?\w+(:\w+)?\}?/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const next = bare.slice((m.index ?? 0) + word.length).trimStart();
    if (next.startsWith("(") || promqlWords.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

// ── alerts ─────────────────────────────────────────────────────────────────────────────────

interface TemplateAlert {
  readonly alert: string;
  /** Its values key under `metrics.prometheusRule`. */
  readonly key: string;
  readonly anchor: string;
}

/** The alerts of templates/prometheusrule.yaml, each with its values key and runbook anchor. */
function templateAlerts(template: string): TemplateAlert[] {
  const out: TemplateAlert[] = [];
  for (const m of template.matchAll(/- alert: (\w+)/g)) {
    const at = m.index ?? 0;
    // The alert's own `{{- with $r.<key> }}` is the last one before it (`alertLabels` is inside).
    const keys = [...template.slice(0, at).matchAll(/\{\{-\s*with \$r\.(\w+)\s*\}\}/g)];
    const key = keys.at(-1)?.[1] ?? "";
    const rest = template.slice(at + m[0].length);
    const body = rest.slice(0, rest.search(/- alert: |$/));
    const anchor = /runbook_url: \{\{ printf "%s#([a-z0-9-]+)"/.exec(body)?.[1] ?? "";
    out.push({ alert: m[1] ?? "", key, anchor });
  }
  return out;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a page's headings (duplicates get `-1`, `-2`… as on GitHub). */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const counts = new Map<string, number>();
  for (const line of markdown.replace(/^```[^\n]*\n[\s\S]*?^```\s*$/gm, "").split("\n")) {
    const h = /^#{1,6}\s+(.*)$/.exec(line);
    if (!h) continue;
    const slug = githubSlug(h[1] ?? "");
    const n = counts.get(slug) ?? 0;
    counts.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

type Scalar = string | number | boolean;

/** `k: v` as the docs write a default (`""` for the empty string). */
function defaultText(key: string, value: Scalar): string {
  return `\`${key}: ${value === "" ? '""' : String(value)}\``;
}

/** Where the alerts table disagrees with the template, values.yaml or the troubleshooting page. */
function alertProblems(
  page: string,
  runbook: string,
  alerts: readonly TemplateAlert[],
  values: Readonly<Record<string, Readonly<Record<string, Scalar>>>>,
): string[] {
  const problems: string[] = [];
  const rows = prose(page)
    .split("\n")
    .map(cells)
    .filter((c): c is string[] => c !== undefined);
  const runbookAnchors = anchors(runbook);
  for (const { alert, key, anchor } of alerts) {
    if (anchor !== alert.toLowerCase()) problems.push(`${alert}: the template's runbook anchor is #${anchor}`);
    if (!runbookAnchors.has(anchor)) problems.push(`${alert}: no heading of the troubleshooting page makes #${anchor}`);
    const row = rows.find((c) => c[0] === `\`${alert}\``);
    if (!row) {
      problems.push(`${alert}: not in the alerts table`);
      continue;
    }
    const text = row.join(" | ");
    const settings = values[key];
    if (!settings) {
      problems.push(`${alert}: values.yaml has no metrics.prometheusRule.${key}`);
      continue;
    }
    if (!text.includes(`\`${key}\``)) problems.push(`${alert}: its row does not name the values key \`${key}\``);
    for (const [k, v] of Object.entries(settings)) {
      if (k === "enabled" || k === "severity") continue;
      if (!text.includes(defaultText(k, v))) problems.push(`${alert}: its row does not say ${defaultText(k, v)}`);
    }
    if (!row.includes(`\`${String(settings.severity)}\``)) {
      problems.push(`${alert}: its row does not give the severity \`${String(settings.severity)}\``);
    }
    if (!text.includes(`troubleshooting.md#${anchor}`)) problems.push(`${alert}: its row does not link #${anchor}`);
  }
  const known = new Set(alerts.map((a) => a.alert));
  for (const c of rows) {
    const name = /^`(OpenBao\w+)`$/.exec(c[0] ?? "")?.[1];
    if (name !== undefined && !known.has(name)) problems.push(`${name}: in the alerts table but not in the template`);
  }
  return problems;
}

// ── conditions and reasons ─────────────────────────────────────────────────────────────────

const conditionTypes = new Set<string>(Object.values(Condition));

interface ConditionRow {
  readonly condition: string;
  readonly status: string;
  readonly reason: string;
}

/** Rows `| \`Condition\` | on | \`Status\` | \`Reason\` | meaning |`. */
function conditionRows(markdown: string): ConditionRow[] {
  const rows: ConditionRow[] = [];
  for (const line of prose(markdown).split("\n")) {
    const c = cells(line);
    if (!c || c.length < 5) continue;
    const condition = unquote(c[0] ?? "");
    if (!conditionTypes.has(condition) || !/^`(True|False|Unknown)`$/.test(c[2] ?? "")) continue;
    rows.push({ condition, status: unquote(c[2] ?? ""), reason: unquote(c[3] ?? "") });
  }
  return rows;
}

const key = (r: ConditionRow): string => `${r.condition} ${r.status} ${r.reason}`;

function codeConditionRows(): ConditionRow[] {
  return Object.entries(conditionReasons).flatMap(([condition, reasons]) =>
    reasons.map((r) => ({ condition, status: r.status, reason: r.reason })),
  );
}

function conditionTableProblems(rows: readonly ConditionRow[]): string[] {
  const documented = rows.map(key);
  const code = codeConditionRows().map(key);
  const problems: string[] = [];
  for (const d of documented) if (!code.includes(d)) problems.push(`documented, not in conditionReasons: ${d}`);
  for (const c of code) if (!documented.includes(c)) problems.push(`in conditionReasons, not documented: ${c}`);
  if (new Set(documented).size !== documented.length) problems.push("a condition row is documented twice");
  return problems;
}

/** Statements `` `Condition=Status` … reason `X` (or `Y`) `` within one clause. */
function conditionStatementProblems(markdown: string): string[] {
  const problems: string[] = [];
  for (const m of prose(markdown).matchAll(/`(\w+)=(True|False|Unknown)`([^.;|\n]*)/g)) {
    const [, condition = "", status = "", tail = ""] = m;
    if (!conditionTypes.has(condition)) {
      problems.push(`\`${condition}=${status}\`: no such condition`);
      continue;
    }
    const afterReason = /\breasons?\b([\s\S]*)$/.exec(tail)?.[1];
    if (afterReason === undefined) continue;
    const reasons = conditionReasons[condition as ConditionType];
    for (const r of afterReason.matchAll(/`(\w+)`/g)) {
      const reason = r[1] ?? "";
      if (!reasons.some((x) => x.reason === reason && x.status === status)) {
        problems.push(`\`${condition}=${status}\` with reason \`${reason}\` is not in conditionReasons`);
      }
    }
  }
  return problems;
}

/** `BackupBlocked` written as a reason of `BackupHealthy`, in a table row or a clause. */
function healthyBlockedProblems(markdown: string): string[] {
  const problems: string[] = [];
  for (const line of prose(markdown).split("\n")) {
    const c = cells(line);
    if (c && unquote(c[0] ?? "") === "BackupHealthy" && line.includes("BackupBlocked")) {
      problems.push(`a BackupHealthy row names BackupBlocked: ${line.trim()}`);
    }
  }
  for (const m of prose(markdown).matchAll(/BackupHealthy[^.;|\n]{0,60}?BackupBlocked(?!`? Events?)/g)) {
    problems.push(`BackupBlocked as a BackupHealthy reason: "${m[0]}"`);
  }
  return problems;
}

/** First-column codes of the blocked-reason table. */
function blockedTableReasons(markdown: string): string[] {
  const out: string[] = [];
  for (const line of section(prose(markdown), "Backups that do not start").split("\n")) {
    const first = cells(line)?.[0];
    const code = first === undefined ? undefined : /^`(\w+)`$/.exec(first)?.[1];
    if (code !== undefined) out.push(code);
  }
  return out;
}

function blockedTableProblems(reasons: readonly string[]): string[] {
  const code: string[] = Object.values(BlockedReason);
  const problems: string[] = [];
  for (const r of reasons) if (!code.includes(r)) problems.push(`${r}: in the blocked table, not a BlockedReason`);
  for (const r of code) if (!reasons.includes(r)) problems.push(`${r}: a BlockedReason missing from the blocked table`);
  return problems;
}

/** Every CamelCase string literal of src/ (reason codes, phases, kinds…). */
function codeVocabulary(): Set<string> {
  const words = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts")) {
        for (const m of readFileSync(path, "utf8").matchAll(/["'`]([A-Z][A-Za-z0-9]+)["'`]/g)) words.add(m[1] ?? "");
      }
    }
  };
  walk(join(projectRoot, "src"));
  return words;
}

/** Codes that are not ours: Kubernetes' Job condition reason the pages mention. */
const foreignCodes = new Set(["BackoffLimitExceeded"]);

/** Backticked CamelCase codes a page names that the code never spells (`Storage<code>` is composed). */
function unknownCodes(markdown: string, vocabulary: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const m of prose(markdown).matchAll(/`([A-Z][A-Za-z0-9]+)`/g)) {
    const word = m[1] ?? "";
    const composed = word.startsWith("Storage") && vocabulary.has(word.slice("Storage".length));
    if (!vocabulary.has(word) && !composed && !foreignCodes.has(word)) out.add(word);
  }
  return [...out];
}

// ── the tests ──────────────────────────────────────────────────────────────────────────────

const exported = exportedMetrics();
const alerts = templateAlerts(ruleTemplate);
const values = load(valuesText) as {
  metrics: {
    prometheusRule: Record<string, Record<string, Scalar>>;
    dashboard?: { enabled?: unknown; labels?: unknown; annotations?: unknown };
  };
};
const ruleValues = values.metrics.prometheusRule;

interface Panel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly datasource?: { type?: string; uid?: string };
  readonly targets?: readonly { expr?: string; datasource?: { type?: string; uid?: string } }[];
  readonly panels?: readonly Panel[];
}

interface Dashboard {
  readonly uid?: string;
  readonly title?: string;
  readonly panels?: readonly Panel[];
  readonly templating?: {
    readonly list?: readonly { name?: string; type?: string; query?: unknown; definition?: string }[];
  };
}

const dashboard = JSON.parse(dashboardText) as Dashboard;
const allPanels = (panels: readonly Panel[] = []): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels)]);
const panels = allPanels(dashboard.panels);
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));

describe("metrics, alerts and conditions: the docs say what the code does", () => {
  after(() => removeHelmHome());

  describe("metrics", () => {
    test("the code registers the metrics the docs are checked against", () => {
      assert.ok(exported.size >= 40, `registered metrics: ${exported.size}`);
      assert.deepEqual([...(exported.get("openbao_backup_schedule_interval_seconds")?.by ?? [])].sort(), [
        "leader",
        "monitor",
      ]);
      assert.deepEqual([...(exported.get("openbao_backup_operator_leader")?.by ?? [])], ["every replica"]);
      // The restore drill manager's metrics are among them, from the leader.
      const drill = [...exported].filter(([name]) => name.startsWith("openbao_backup_drill_"));
      assert.equal(drill.length, 8, drill.map(([name]) => name).join(", "));
      for (const [name, metric] of drill) assert.deepEqual([...metric.by], ["leader"], name);
      assert.deepEqual(exported.get("openbao_backup_drill_last_outcome")?.labels, ["namespace", "cluster", "outcome"]);
      assert.equal(exported.get("openbao_backup_drill_total")?.type, "counter");
    });

    test("the checks can fail", () => {
      const wrong: MetricRow[] = [
        { name: "openbao_backup_in_progress", type: "counter", labels: ["namespace"], by: ["monitor"] },
        { name: "openbao_backup_nonexistent", type: "gauge", labels: [], by: ["leader"] },
      ];
      const problems = metricRowProblems(wrong, exported).join("\n");
      assert.match(problems, /openbao_backup_in_progress: documented as counter, is a gauge/);
      assert.match(problems, /openbao_backup_in_progress: documented labels/);
      assert.match(problems, /openbao_backup_in_progress: documented as exported by monitor/);
      assert.match(problems, /openbao_backup_nonexistent: documented but not registered/);
      assert.match(problems, /openbao_backup_blocked: registered but has no row/);
      assert.match(problems, /openbao_backup_drill_last_outcome: registered but has no row/);
      assert.deepEqual(
        metricRows("| `openbao_backup_blocked` | gauge | `namespace`, `reason` | leader | x |").map((r) => r.labels),
        [["namespace", "reason"]],
      );
      assert.deepEqual(
        unexported(
          [
            "openbao_backup_",
            "openbao_backups_",
            "openbao_restore_duration_seconds_bucket",
            "openbao_backup_last_size_bytes_sum",
            "openbao_backup_lastsuccess_timestamp_seconds",
          ],
          exported,
        ),
        ["openbao_backups_", "openbao_backup_last_size_bytes_sum", "openbao_backup_lastsuccess_timestamp_seconds"],
      );
    });

    test("every registered metric has a row with its type, labels and process, and every row is registered", () => {
      const rows = metricRows(metricsPage);
      assert.ok(rows.length >= exported.size, `metric rows: ${rows.length}`);
      assert.deepEqual(metricRowProblems(rows, exported), []);
    });

    test("every openbao_* name in the docs, the alert rules and the dashboard is exported", () => {
      const problems: string[] = [];
      const sources: [string, string][] = [
        ...markdownFiles().map((f): [string, string] => [relative(projectRoot, f), readFileSync(f, "utf8")]),
        ["deploy/chart/templates/prometheusrule.yaml", ruleTemplate],
        ["deploy/chart/dashboards/openbao-backup.json", dashboardText],
      ];
      for (const [where, text] of sources) {
        for (const name of unexported(openbaoNames(text), exported)) problems.push(`${where}: ${name}`);
      }
      assert.deepEqual(problems, []);
      assert.ok(openbaoNames(ruleTemplate).length >= 10, "the rules name the metrics they read");
    });
  });

  describe("alerts", () => {
    test("the checks can fail", () => {
      const parsed = templateAlerts(
        '{{- with $r.foo }}\n- alert: OpenBaoFoo\n  {{- with $r.alertLabels }}{{- end }}\n  runbook_url: {{ printf "%s#openbaofo" $runbook | quote }}\n{{- end }}',
      );
      assert.deepEqual(parsed, [{ alert: "OpenBaoFoo", key: "foo", anchor: "openbaofo" }]);
      const page = [
        "| `OpenBaoFoo` | x | `foo`: `threshold: 2` | `critical` | [x](troubleshooting.md#openbaofo) |",
        "| `OpenBaoGone` | x | x | x | x |",
      ].join("\n");
      const problems = alertProblems(page, "### OpenBaoFooo\n", parsed, {
        foo: { enabled: true, threshold: 1, for: "5m", severity: "warning" },
      }).join("\n");
      assert.match(problems, /OpenBaoFoo: the template's runbook anchor is #openbaofo/);
      assert.match(problems, /OpenBaoFoo: no heading of the troubleshooting page makes #openbaofo/);
      assert.match(problems, /does not say `threshold: 1`/);
      assert.match(problems, /does not say `for: 5m`/);
      assert.match(problems, /does not give the severity `warning`/);
      assert.match(problems, /OpenBaoGone: in the alerts table but not in the template/);
      assert.match(alertProblems("", "", parsed, {}).join(), /not in the alerts table/);
      assert.equal(
        githubSlug("Exit codes of `bao-backup backup` / `bao-backup restore`"),
        "exit-codes-of-bao-backup-backup--bao-backup-restore",
      );
      assert.equal(githubSlug("OpenBaoBackupFailing"), "openbaobackupfailing");
      assert.deepEqual([...anchors("## A\n## A\n```sh\n# not a heading\n```\n")], ["a", "a-1"]);
    });

    test("the template's alerts, each with a values key", () => {
      assert.deepEqual(
        alerts.map((a) => a.alert),
        [
          "OpenBaoBackupFailing",
          "OpenBaoBackupMissed",
          "OpenBaoBackupNeverSucceeded",
          "OpenBaoBackupBlocked",
          "OpenBaoBackupMisconfigured",
          "OpenBaoBackupRetentionFailing",
          "OpenBaoBackupDestinationFailing",
          "OpenBaoRestoreFailed",
          "OpenBaoRestoreDrillFailed",
          "OpenBaoRestoreDrillStale",
          "OpenBaoBackupStale",
          "OpenBaoBackupFreshnessUnknown",
          "OpenBaoBackupOperatorDown",
          "OpenBaoBackupMonitorDown",
        ],
      );
      assert.equal((ruleTemplate.match(/- alert: /g) ?? []).length, alerts.length, "every alert is parsed");
    });

    test("every alert is in the table with its values and defaults, severity and runbook heading", () => {
      assert.deepEqual(alertProblems(metricsPage, troubleshooting, alerts, ruleValues), []);
    });
  });

  describe("conditions and reasons", () => {
    test("the checks can fail", () => {
      const wrongTable = [
        "| `BackingUp` | OpenBaoCluster | `True` | `BackupJobRunning` | x |",
        "| `BackupHealthy` | OpenBaoCluster | `False` | `BackupBlocked` | x |",
        "| `BackingUp` | OpenBaoCluster | `True` | `BackupJobRunning` | x |",
      ].join("\n");
      const problems = conditionTableProblems(conditionRows(wrongTable)).join("\n");
      assert.match(problems, /documented, not in conditionReasons: BackupHealthy False BackupBlocked/);
      assert.match(problems, /in conditionReasons, not documented: BackingUp False NoBackupRunning/);
      assert.match(problems, /documented twice/);
      assert.match(
        conditionStatementProblems("It is `BackupHealthy=False`, reason `BackupBlocked`.").join(),
        /`BackupHealthy=False` with reason `BackupBlocked`/,
      );
      assert.match(
        conditionStatementProblems("`BackingUp=True` with reason `NoBackupRunning`").join(),
        /`BackingUp=True` with reason `NoBackupRunning`/,
      );
      assert.deepEqual(conditionStatementProblems("`BackingUp=False`, reason `BackupBlocked`; `X` later."), []);
      assert.equal(healthyBlockedProblems(wrongTable).length, 1);
      assert.equal(healthyBlockedProblems("Then `BackupHealthy` is `False` (`BackupBlocked`).").length, 1);
      assert.deepEqual(healthyBlockedProblems("`BackupHealthy=False`: look at the `BackupBlocked` Events"), []);
      assert.deepEqual(
        blockedTableProblems(["ClusterNotRunning", "ClusterNotReady"]).filter((p) => !p.includes("missing")),
        ["ClusterNotReady: in the blocked table, not a BlockedReason"],
      );
      assert.ok(
        blockedTableProblems(["ClusterNotRunning"]).some((p) => p.startsWith("SecretNotFound: a BlockedReason")),
      );
      const vocabulary = codeVocabulary();
      assert.deepEqual(
        unknownCodes("`BackupBlocked`, `StorageAuthDenied`, `BackupBlockd`, `StorageNope`", vocabulary),
        ["BackupBlockd", "StorageNope"],
      );
    });

    test("the conditions table equals conditionReasons: every condition, status and reason", () => {
      const rows = conditionRows(section(metricsPage, "Conditions and Events"));
      assert.equal(rows.length, codeConditionRows().length);
      assert.deepEqual(conditionTableProblems(rows), []);
    });

    test("every `Condition=Status … reason` statement in the docs is one the code sets", () => {
      const problems = markdownFiles().flatMap((f) =>
        conditionStatementProblems(readFileSync(f, "utf8")).map((p) => `${relative(projectRoot, f)}: ${p}`),
      );
      assert.deepEqual(problems, []);
      assert.ok(
        conditionStatementProblems("`BackingUp=False`, reason `BackupBlocked`").length === 0 &&
          /`BackingUp=False`,\s+reason `BackupBlocked`/.test(metricsPage) &&
          /`BackingUp=False`,\s+reason `BackupBlocked`/.test(troubleshooting),
        "both pages say a blocked backup is BackingUp=False, reason BackupBlocked",
      );
    });

    test("no page calls BackupBlocked a reason of BackupHealthy", () => {
      const problems = markdownFiles().flatMap((f) =>
        healthyBlockedProblems(readFileSync(f, "utf8")).map((p) => `${relative(projectRoot, f)}: ${p}`),
      );
      assert.deepEqual(problems, []);
    });

    test("the blocked-reason table lists every BlockedReason and nothing else", () => {
      assert.deepEqual(blockedTableProblems(blockedTableReasons(troubleshooting)), []);
    });

    test("every reason code the troubleshooting and metrics pages name exists in the code", () => {
      const vocabulary = codeVocabulary();
      for (const a of alerts) vocabulary.add(a.alert);
      assert.deepEqual(unknownCodes(troubleshooting, vocabulary), [], "docs/troubleshooting.md");
      assert.deepEqual(unknownCodes(metricsPage, vocabulary), [], "docs/metrics-and-alerts.md");
    });

    test("the end-to-end section is there for the measured stage table", () => {
      assert.match(metricsPage, /^## End-to-end: what fires when$/m);
    });
  });

  describe("the Grafana dashboard", () => {
    test("the checks can fail", () => {
      assert.deepEqual(
        metricsOfExpr(
          'sum by (namespace, le) (rate(openbao_nope_total{job="a", cluster=~"$cluster"}[$__rate_interval])) * on (x) group_left time() > bool 1 or vector(0)',
        ),
        ["openbao_nope_total"],
      );
      assert.deepEqual(unexported(metricsOfExpr("max(openbao_backup_in_progres)"), exported), [
        "openbao_backup_in_progres",
      ]);
    });

    test("a Grafana dashboard with a Prometheus data source variable and namespace/cluster variables", () => {
      assert.equal(dashboard.uid, "openbao-backup");
      const vars = dashboard.templating?.list ?? [];
      const byName = new Map(vars.map((v) => [v.name, v]));
      assert.equal(byName.get("datasource")?.type, "datasource");
      assert.equal(byName.get("datasource")?.query, "prometheus");
      assert.equal(byName.get("namespace")?.query, "label_values(openbao_backup_consecutive_failures, namespace)");
      assert.equal(
        byName.get("cluster")?.query,
        'label_values(openbao_backup_consecutive_failures{namespace=~"$namespace"}, cluster)',
      );
      const ids = panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
      for (const p of panels.filter((x) => x.type !== "row")) {
        assert.deepEqual(p.datasource, { type: "prometheus", uid: `\${datasource}` }, `${p.title}: data source`);
        assert.ok((p.targets ?? []).length > 0, `${p.title}: has a query`);
        for (const t of p.targets ?? []) assert.deepEqual(t.datasource, p.datasource, `${p.title}: target data source`);
      }
    });

    test("every query reads only exported metrics, and the panels cover what the issue asks", () => {
      const variableQueries = (dashboard.templating?.list ?? []).flatMap((v) =>
        typeof v.query === "string" && v.type === "query" ? [v.query.replace(/^label_values\((.*), \w+\)$/, "$1")] : [],
      );
      const used = [...exprs, ...variableQueries].flatMap(metricsOfExpr);
      assert.deepEqual(unexported([...new Set(used)], exported), []);
      for (const name of [
        "openbao_backup_last_success_timestamp_seconds",
        "openbao_backup_storage_newest_verified_timestamp_seconds",
        "openbao_backup_consecutive_failures",
        "openbao_backup_blocked",
        "openbao_backup_in_progress",
        "openbao_backup_last_size_bytes",
        "openbao_backup_last_duration_seconds",
        "openbao_backup_success_total",
        "openbao_backup_failure_total",
        "openbao_restore_total",
        "openbao_restore_failure_total",
        "openbao_backup_operator_leader",
        "openbao_backup_storage_probe_success",
        "openbao_backup_monitor_last_pass_timestamp_seconds",
      ]) {
        assert.ok(used.includes(name), `a panel reads ${name}`);
      }
    });

    test("values.yaml: metrics.dashboard is off by default, with the sidecar's label", () => {
      assert.deepEqual(values.metrics.dashboard, {
        enabled: false,
        labels: { grafana_dashboard: "1" },
        annotations: {},
      });
    });

    test("helm renders the ConfigMap only when enabled, with the JSON and configurable labels", async () => {
      const off = await render("openbao-backup", "openbao-backup-system");
      assert.equal(off.filter((m) => m.kind === "ConfigMap").length, 0, "no dashboard by default");
      const on = await render("openbao-backup", "openbao-backup-system", {
        "metrics.dashboard.enabled": "true",
        "metrics.dashboard.labels.team": "platform",
        "metrics.dashboard.annotations.grafana_folder": "OpenBao",
      });
      const maps = on.filter((m) => m.kind === "ConfigMap");
      assert.equal(maps.length, 1);
      const map = maps[0];
      assert.ok(map);
      assert.equal(map.metadata.name, "openbao-backup-dashboard");
      assert.equal(map.metadata.namespace, "openbao-backup-system");
      assert.equal(map.metadata.labels?.grafana_dashboard, "1");
      assert.equal(map.metadata.labels?.team, "platform");
      assert.equal(map.metadata.annotations?.grafana_folder, "OpenBao");
      const data = (map as { data?: Record<string, string> }).data ?? {};
      assert.deepEqual(Object.keys(data), ["openbao-backup.json"]);
      assert.deepEqual(JSON.parse(data["openbao-backup.json"] ?? "null"), dashboard);
    });
  });
});
