/**
 * The Shamir unseal keys a verified drill opens the restored data with: a directory holding
 * one key per file, as a Kubernetes Secret is mounted (each key a file, symlinked through
 * `..data/`, names starting with "." being the kubelet's own). Keys are used in file-name
 * order; more than the threshold is fine, OpenBao stops asking once it is unsealed.
 *
 * The keys are secrets: they are read here, handed to the runner, added to the list every
 * message is redacted with, and never printed — an error names the file, never its content.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { DrillConfigError } from "./config.ts";

/** More files than any Shamir configuration has shares means the wrong directory. */
const maxKeyFiles = 64;
const maxKeyBytes = 4096;
/** A key as `bao operator init` prints it: base64 (`keys_base64`) or hex (`keys`). */
const keyPattern = /^(?:[A-Za-z0-9+/]{16,1024}={0,2}|[0-9a-fA-F]{16,1024})$/;

function problem(message: string, cause?: unknown): DrillConfigError {
  return new DrillConfigError("DRILL_UNSEAL_KEYS_DIR", message, cause === undefined ? undefined : { cause });
}

export async function readUnsealKeys(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith(".")).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw problem(`cannot read ${dir} (${code}); mount the Secret holding the unseal keys there`, err);
  }
  if (names.length > maxKeyFiles) throw problem(`${dir} holds ${names.length} files; unseal keys are at most 64`);
  const keys: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    // Directories (the kubelet's timestamped ones start with ".", others are not keys) are skipped.
    if (info === undefined || !info.isFile()) continue;
    if (info.size > maxKeyBytes) throw problem(`${path} is ${info.size} bytes, not an unseal key`);
    const key = (await readFile(path, "utf8")).trim();
    if (!keyPattern.test(key)) {
      throw problem(
        `${path} does not hold an unseal key (base64 or hex, one key per file, as bao operator init prints them)`,
      );
    }
    keys.push(key);
  }
  if (keys.length === 0) throw problem(`${dir} holds no key files; put each unseal key in a file of its own`);
  return keys;
}
