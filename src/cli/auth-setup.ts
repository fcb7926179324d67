/**
 * `bao-backup auth-setup`: configures OpenBao so backup and restore Jobs can log in with their
 * projected ServiceAccount tokens — safely on an OpenBao other people use too:
 *
 * 1. flags are checked (auth-setup/settings.ts), then where OpenBao gets the token-signing
 *    keys is decided (auth-setup/signing.ts: the API server's JWKS, which follows key
 *    rotation, or fixed keys);
 * 2. everything it may touch is read (auth-setup/state.ts) and every write planned
 *    (auth-setup/plan.ts) before any is made. It changes only what is missing, what it created
 *    itself (auth-setup/markers.ts) and what `--adopt` names; anything else that would have
 *    to change is refused, all of it named at once, and nothing is written;
 * 3. `--dry-run` prints the writes instead of making them.
 *
 * The admin token is read from `--token-file` or the `BAO_TOKEN` environment variable, never
 * from a flag value (it would land in shell history); it never appears in any output.
 */
import { defaultJwtAudience } from "../api/constants.ts";
import { OpenBaoError } from "../openbao/errors.ts";
import { OpenBaoHttp } from "../openbao/http.ts";
import { type Bao, write } from "./auth-setup/bao.ts";
import { configDifferences } from "./auth-setup/config-diff.ts";
import { makePlan, type Step } from "./auth-setup/plan.ts";
import { type Outcome, printDryRun, printRefusal, printResult, refusal } from "./auth-setup/report.ts";
import { authSetupFlags, settingsFrom } from "./auth-setup/settings.ts";
import { chooseSigning, type Signing } from "./auth-setup/signing.ts";
import { readState, type State } from "./auth-setup/state.ts";
import { exitCodes } from "./exit-codes.ts";
import { outputFormat, parseFlags, reportFailure, UsageError } from "./shared.ts";

const help = `Usage: bao-backup auth-setup <cluster> -n <namespace> --address <url> [options]

Configures OpenBao's JWT auth for backup and restore Jobs and prints what it changed
("unchanged" when nothing needed to change):
  - enables JWT auth at --path when missing, and sets how it checks tokens and their issuer;
  - writes the policies --backup-policy (read sys/storage/raft/snapshot) and --restore-policy
    (update sys/storage/raft/snapshot and snapshot-force);
  - writes the roles --backup-role and --restore-role, bound to --audience and to the
    ServiceAccounts <cluster>-backup and <cluster>-restore in <namespace> (the operator's
    names for backup and restore Jobs).

Safe on a shared OpenBao: it reads everything first, then changes only what is missing, what
it created itself (the mount's description starts "bao-backup auth-setup"; its policies hold a
line "# Managed by bao-backup auth-setup"; its roles grant one such policy) and what --adopt
names. Anything else that would change is refused — each item named, with what differs — and
nothing is written.

OpenBao:
  --address <url>                   OpenBao API address (or BAO_ADDR)
  --ca-file <file>                  CA of OpenBao's TLS (or BAO_CACERT); default: system CAs
  --tls-server-name <name>          the DNS name in OpenBao's certificate, for SNI and its check
                                    (or BAO_TLS_SERVER_NAME), e.g. bao.openbao.svc when
                                    --address is a port-forward on https://127.0.0.1:8200
  --token-file <file>               admin token; or the BAO_TOKEN environment variable.
                                    (There is no --token: a token on the command line would
                                    land in shell history.)
How OpenBao checks the Jobs' tokens:
  --kubeconfig <file>               read the API server's issuer, keys and jwks_uri
  --jwt-validation auto|jwks|pubkeys
                                    jwks: OpenBao fetches the API server's signing keys itself
                                    (jwks_url), so key rotation needs no re-run; pubkeys: fixed
                                    jwt_validation_pubkeys, re-run auth-setup after a rotation.
                                    auto (default): jwks when the API server serves its JWKS to
                                    anonymous clients, else pubkeys
  --jwks-url <url>                  the JWKS OpenBao fetches (default: the API server's jwks_uri)
  --jwks-ca-file <file>             CA for --jwks-url (default: the kubeconfig's CA)
  --jwt-validation-pubkey-file <f>  PEM public key(s) that sign ServiceAccount tokens (pubkeys)
  --issuer <iss>                    bound_issuer (default: the discovered issuer; none with a key file)
Names (they must match what the cluster and the restores use):
  -n, --namespace <ns>              namespace of the OpenBaoCluster (required)
  --path <path>                     JWT auth mount path (default jwt)
  --audience <aud>                  bound audience (default ${defaultJwtAudience}, the operator's OPENBAO_JWT_AUDIENCE)
  --backup-role <name>              default backup (spec.backup.jwtAuthRole)
  --restore-role <name>             default restore (OpenBaoRestore spec.jwtAuthRole)
  --backup-policy <name>            default backup
  --restore-policy <name>           default restore
  --canary-path <mount>/<path>      spec.backup.drill.canaryPath: the backup policy also writes the
                                    restore drills' KV v2 canary there, reads it back, and reads
                                    sys/mounts and sys/auth (docs/drills.md)
  --token-ttl <duration>            TTL of the tokens the roles issue (default 1h)
Changes:
  --adopt <item>[,<item>…]          let auth-setup take over (rewrite and mark) existing items it
                                    did not create, each named: mount:<path>, policy:<name>,
                                    role:<name>. Repeatable. Nothing unnamed is ever adopted
  --dry-run                         print every write (method, path, body) and make none
  -o, --output json|text
  -h, --help

Exit codes: 0 configured (or a dry run), 1 configuration or a refusal (nothing changed),
2 the admin token was refused or lacks permission (or Kubernetes refused the kubeconfig),
3 OpenBao unreachable.
`;

/** OpenBao refuses a config whose jwks_url it cannot fetch, with a 400 saying so. */
const jwksRefused = (err: unknown): boolean =>
  err instanceof OpenBaoError && err.status === 400 && /jwks/i.test(err.message);

/** Makes the planned writes in order; the auto fallback replaces a jwks config OpenBao cannot fetch. */
async function apply(
  bao: Bao,
  steps: readonly Step[],
  signing: Signing,
  state: State,
  notes: string[],
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const done: string[] = [];
  for (const step of steps) {
    let outcome: Outcome = { item: step.item, action: step.action, ...(step.note ? { note: step.note } : {}) };
    for (const w of step.writes) {
      try {
        await write(bao, w);
      } catch (err) {
        const url = String(signing.primary.body.jwks_url ?? "");
        if (step.kind === "config" && jwksRefused(err) && signing.fallback) {
          const fallback = signing.fallback;
          notes.push(
            `OpenBao could not fetch ${url} itself (it answered: ${err instanceof Error ? err.message : String(err)}), so auth-setup configured fixed keys instead: after the API server's signing keys rotate, run auth-setup again`,
          );
          const item = step.item.replace(/\(.*\)$/, `(${fallback.label})`);
          if (configDifferences(state.config, fallback.body).length === 0) {
            outcome = { item, action: "unchanged" };
          } else {
            await write(bao, { ...w, body: fallback.body });
            outcome = { item, action: state.config === undefined ? "created" : "updated" };
          }
          continue;
        }
        const before = done.length > 0 ? ` Written before this: ${done.join("; ")}.` : " Nothing was written.";
        if (jwksRefused(err)) {
          throw new UsageError(
            `OpenBao could not fetch the JWKS at ${url} (it checks it when the config is written: ${err instanceof Error ? err.message : String(err)}); make that URL reachable from OpenBao (and --jwks-ca-file its CA), or use --jwt-validation pubkeys.${before}`,
          );
        }
        if (err instanceof Error) err.message = `${err.message}.${before}`;
        throw err;
      }
    }
    if (step.writes.length > 0) done.push(`${outcome.action} ${outcome.item}`);
    outcomes.push(outcome);
  }
  return outcomes;
}

export async function authSetupCommand(argv: readonly string[]): Promise<number> {
  const secrets: string[] = [];
  let http: OpenBaoHttp | undefined;
  try {
    const args = parseFlags(argv, authSetupFlags, 1);
    if (args.values.help === true) {
      process.stdout.write(help);
      return exitCodes.ok;
    }
    const settings = settingsFrom(args, outputFormat(args));
    secrets.push(settings.token);
    const signing = await chooseSigning(settings, args);

    http = new OpenBaoHttp({ caPem: settings.caPem, serverName: settings.serverName });
    const bao: Bao = { http, address: settings.address, token: settings.token };
    const state = await readState(bao, settings);
    const plan = makePlan(settings, state, signing.primary);

    const unknown = settings.adopt.filter((a) => !plan.adoptNames.includes(a));
    if (unknown.length > 0) {
      throw new UsageError(
        `--adopt ${unknown.join(",")}: not something this run manages; it can adopt ${plan.adoptNames.join(", ")} (names follow --path, --backup-policy, --restore-policy, --backup-role and --restore-role)`,
      );
    }
    if (plan.conflicts.length > 0) {
      printRefusal(settings, plan.conflicts);
      throw refusal(plan.conflicts);
    }
    const notes: string[] = [];
    const idle = settings.adopt.filter((a) => !plan.steps.some((s) => s.adoptName === a && s.action === "adopted"));
    if (idle.length > 0)
      notes.push(
        `--adopt ${idle.join(",")}: nothing to take over (missing, already auth-setup's, or already as wanted)`,
      );
    if (signing.fallback) {
      notes.push(
        `OpenBao checks ${String(signing.primary.body.jwks_url)} when the config is written; should it be unable to fetch it, auth-setup writes the API server's current keys instead`,
      );
    }
    if (settings.dryRun) {
      printDryRun(settings, plan.steps, signing.reason, notes);
      return exitCodes.ok;
    }
    const outcomes = await apply(bao, plan.steps, signing, state, notes);
    // The fallback replaced the reason given for jwks.
    const reason = notes.some((n) => n.startsWith("OpenBao could not fetch"))
      ? "fixed keys (see below)"
      : signing.reason;
    printResult(
      settings,
      outcomes,
      reason,
      notes.filter((n) => !n.startsWith("OpenBao checks")),
    );
    return exitCodes.ok;
  } catch (err) {
    return reportFailure("auth-setup", err, secrets);
  } finally {
    http?.close();
  }
}
