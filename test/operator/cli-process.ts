/**
 * `bao-backup operator` or `bao-backup monitor` as a child process against a test API server,
 * on a free health port, waited for until its probe answers: one way to start them for the
 * operator stack, the restore stack and the alerts test.
 */
import { join } from "node:path";
import { projectRoot } from "../servers/catalog.ts";
import { freePort } from "../servers/ports.ts";
import { type ManagedProcess, startProcess, waitFor } from "../servers/process.ts";

export interface CliProcessOptions {
  readonly command: "operator" | "monitor";
  readonly name?: string;
  readonly kubeConfigPath: string;
  readonly namespace: string;
  /** Flags after the common ones (kubeconfig, namespace, health port). */
  readonly args?: readonly string[];
  /** Extra environment, e.g. `BAO_BACKUP_CRASH_AT` (src/runtime/crash-point.ts). */
  readonly env?: Readonly<Record<string, string>>;
  /** The probe waited for; default `/healthz`. */
  readonly ready?: "/healthz" | "/readyz";
}

export interface CliProcess {
  readonly process: ManagedProcess;
  /** `http://127.0.0.1:<health port>`: /healthz, /readyz, /metrics. */
  readonly healthUrl: string;
}

export async function startCliProcess(options: CliProcessOptions): Promise<CliProcess> {
  const port = await freePort();
  const proc = startProcess({
    name: options.name ?? options.command,
    command: process.execPath,
    args: [
      join(projectRoot, "src", "cli", "main.ts"),
      options.command,
      "--kubeconfig",
      options.kubeConfigPath,
      "--namespace",
      options.namespace,
      "--health-port",
      String(port),
      ...(options.args ?? []),
    ],
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "debug", ...options.env },
  });
  const healthUrl = `http://127.0.0.1:${port}`;
  const probe = options.ready ?? "/healthz";
  try {
    await waitFor(async () => (await fetch(`${healthUrl}${probe}`)).ok, {
      what: `${options.command} ${probe}`,
      processes: [proc],
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { process: proc, healthUrl };
}
