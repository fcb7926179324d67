/**
 * The one way the managers read and write our custom resources' state: a GET that answers
 * `undefined` for "not there", an optimistic PUT of `/status` carrying the resourceVersion
 * the caller planned from (never a blind merge: SPEC §5 trap 5), and the loop that re-reads
 * and plans again when that PUT conflicts (409: someone else wrote first — the lifecycle
 * operator, a user, the other manager).
 *
 * Backup (src/backup/controller.ts) and restore (src/restore/controller.ts) both use these;
 * neither keeps a copy.
 */
import type { CustomObjectsApi } from "@kubernetes/client-node";
import { apiVersion, group, version } from "../api/constants.ts";
import { isConflict, isNotFound } from "./errors.ts";

/** The names of one of our custom resource kinds. */
export interface KindNames {
  readonly kind: string;
  readonly plural: string;
}

/** The fields of a custom object the status write needs. */
export interface StatusObject {
  readonly metadata: { name?: string; namespace?: string; resourceVersion?: string };
  readonly status?: unknown;
}

/** GET one object; `undefined` when it does not exist (any other failure throws). */
export async function getObject<T>(
  custom: CustomObjectsApi,
  names: KindNames,
  namespace: string,
  name: string,
): Promise<T | undefined> {
  try {
    return (await custom.getNamespacedCustomObject({ group, version, namespace, plural: names.plural, name })) as T;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * PUT `status` as the object's whole /status, with the resourceVersion of `object`: a write
 * made by anyone since `object` was read makes this fail with 409. Returns the object as
 * the API server stored it (its new resourceVersion included).
 */
export async function replaceStatus<T extends StatusObject>(
  custom: CustomObjectsApi,
  names: KindNames,
  object: T,
  status: NonNullable<T["status"]>,
): Promise<T> {
  const { name, namespace, resourceVersion } = object.metadata;
  return (await custom.replaceNamespacedCustomObjectStatus({
    group,
    version,
    namespace: namespace ?? "",
    plural: names.plural,
    name: name ?? "",
    body: { apiVersion, kind: names.kind, metadata: { name, namespace, resourceVersion }, status },
  })) as T;
}

/**
 * Runs `attempt` on `state`; when it fails with a conflict, re-reads with `reread` and runs
 * it again, at most `retries` more times. `undefined` when the re-read finds the object
 * gone. Any other error (and the last conflict) is thrown: the work queue retries it later.
 */
export async function retryOnConflict<S, R>(
  state: S,
  retries: number,
  reread: () => Promise<S | undefined>,
  attempt: (state: S) => Promise<R>,
): Promise<R | undefined> {
  let current = state;
  for (let tried = 0; ; tried++) {
    try {
      return await attempt(current);
    } catch (err) {
      if (!isConflict(err) || tried >= retries) throw err;
    }
    const fresh = await reread();
    if (fresh === undefined) return undefined;
    current = fresh;
  }
}
