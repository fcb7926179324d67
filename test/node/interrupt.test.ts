/**
 * A run interrupted mid-way leaves the machine as it found it: a child process starts a real
 * node and a Pod on it, is sent SIGINT (as Ctrl-C or CI's cancel would), and afterwards no
 * process, mount, bridge, cgroup, changed sysctl, host path or state directory remains.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { bridgeName, nodeStateDir } from "./cluster.ts";
import { nodeTierSkip } from "./gate.ts";
import { findLeftovers, hostBaseline } from "./host.ts";

describe("real node: an interrupted run leaves nothing behind", { skip: nodeTierSkip() }, () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    test(
      `${signal} while a Pod runs: no process, mount, bridge, cgroup, sysctl or file is left`,
      { timeout: 300_000 },
      async () => {
        const baseline = hostBaseline();
        const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures", "node-until-signal.ts")], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        const ready = new Promise<void>((resolve, reject) => {
          child.stdout.on("data", (chunk: Buffer) => {
            output += chunk.toString();
            if (output.includes("READY")) resolve();
          });
          child.stderr.on("data", (chunk: Buffer) => {
            output += chunk.toString();
          });
          child.on("exit", (code) => reject(new Error(`the node child exited (${code}) before READY:\n${output}`)));
        });
        await ready;
        // The node really changed the host: the bridge and Pod cgroups exist now.
        assert.ok(
          findLeftovers(baseline, nodeStateDir, bridgeName).length > 0,
          "a running node is visible to the check",
        );
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        child.kill(signal);
        const code = await exited;
        assert.equal(code, 130, `the child stopped through its signal handler:\n${output}`);
        assert.deepEqual(findLeftovers(baseline, nodeStateDir, bridgeName), [], output);
      },
    );
  }
});
