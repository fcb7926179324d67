/**
 * `bao-backup trigger <cluster>`: requests one manual backup by setting the
 * `openbao.org/trigger-backup` annotation (a merge patch; the value is the request time);
 * with `--drill`, one restore drill now (`openbao.org/trigger-drill`, src/drill/manager/).
 * The operator turns it into a Job and clears it (SPEC §2); while the request cannot run yet
 * it stays, so `status` shows it as pending.
 */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { Annotation, clusterNames, group, version } from "../api/constants.ts";
import { apiStatus } from "../kube/errors.ts";
import { exitCodes } from "./exit-codes.ts";
import {
  getCluster,
  KubeProblem,
  kubeError,
  kubeFlags,
  openKube,
  outputFlags,
  outputFormat,
  parseFlags,
  printJson,
  reportFailure,
  UsageError,
} from "./shared.ts";

const help = `Usage: bao-backup trigger <cluster> [--drill] [-n namespace] [--kubeconfig file] [-o json]

Requests one manual backup of an OpenBaoCluster: sets the ${Annotation.TriggerBackup}
annotation to the current time. The operator creates the backup Job (even when the schedule
is suspended) and clears the annotation; follow it with \`bao-backup status <cluster>\`.

  --drill                  request one restore drill instead (${Annotation.TriggerDrill}; needs
                           spec.backup.drill): the result is in status.backup.lastDrill and the
                           RestoreVerified condition
  --key <object key>       with --drill: drill this backup instead of spec.backup.drill.key

  --kubeconfig <file>      default: $KUBECONFIG, then ~/.kube/config
  -n, --namespace <ns>     default: the kubeconfig context's namespace, else "default"
  -o, --output json|text
  -h, --help

Exit codes: 0 requested, 1 configuration (no such cluster, no spec.backup, kubeconfig
unusable), 2 Kubernetes auth (401/403).
`;

export async function triggerCommand(argv: readonly string[]): Promise<number> {
  try {
    const args = parseFlags(
      argv,
      { ...kubeFlags, ...outputFlags, drill: { type: "boolean" }, key: { type: "string" } },
      1,
    );
    if (args.values.help === true) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const format = outputFormat(args);
    const drill = args.values.drill === true;
    const annotation = drill ? Annotation.TriggerDrill : Annotation.TriggerBackup;
    const what = drill ? "restore drill" : "backup";
    const name = args.positionals[0];
    if (name === undefined)
      throw new UsageError(`<cluster> is required: the OpenBaoCluster to ${drill ? "drill" : "back up"}`);
    const kube = openKube(args);
    const cluster = await getCluster(kube, name);
    if (!cluster.spec?.backup) {
      throw new KubeProblem(
        exitCodes.config,
        `OpenBaoCluster ${kube.namespace}/${name} has no spec.backup, so no ${what} would run; configure spec.backup first`,
      );
    }
    if (drill && !cluster.spec.backup.drill) {
      throw new KubeProblem(
        exitCodes.config,
        `OpenBaoCluster ${kube.namespace}/${name} has no spec.backup.drill, so no restore drill would run; configure spec.backup.drill first (docs/drills.md)`,
      );
    }
    const key = typeof args.values.key === "string" ? args.values.key : undefined;
    if (key !== undefined && (!drill || key === "" || /\s/.test(key))) {
      throw new UsageError(
        drill
          ? "--key needs an object key without spaces, e.g. bao/2026/12/06/…snap"
          : "--key applies with --drill only",
      );
    }
    const previous = cluster.metadata.annotations?.[annotation];
    // The time makes each request a new value: an answered request is recognised by its value.
    const value = `${new Date().toISOString()}${key === undefined ? "" : ` key=${key}`}`;
    try {
      await kube.custom.patchNamespacedCustomObject(
        {
          group,
          version,
          namespace: kube.namespace,
          plural: clusterNames.plural,
          name,
          body: { metadata: { annotations: { [annotation]: value } } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (apiStatus(err) === 404) {
        throw new KubeProblem(exitCodes.config, `OpenBaoCluster ${kube.namespace}/${name} disappeared`, { cause: err });
      }
      throw kubeError(kube, `annotating OpenBaoCluster ${kube.namespace}/${name}`, err);
    }
    if (format === "json") {
      printJson({
        cluster: name,
        namespace: kube.namespace,
        annotation,
        value,
        replacedPending: previous ?? null,
      });
    } else {
      process.stdout.write(
        `Requested a ${what} of ${kube.namespace}/${name} (${annotation}=${value}).\n` +
          (previous ? `An earlier request (${previous}) was still pending; this one replaces it.\n` : "") +
          `The operator clears the annotation once the Job exists; follow with: bao-backup status ${name} -n ${kube.namespace}\n`,
      );
    }
    return exitCodes.ok;
  } catch (err) {
    return reportFailure("trigger", err);
  }
}
