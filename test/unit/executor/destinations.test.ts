/**
 * Several destinations (issue 18, item 3), the pure parts: the success policy, and how
 * BACKUP_ADDITIONAL_TARGETS / BACKUP_TARGET_NAME / BACKUP_SUCCESS_POLICY are read and refused.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, loadBackupConfig } from "../../../src/executor/config.ts";
import { decide } from "../../../src/executor/success-policy.ts";

describe("success policy", () => {
  const outcomes = (...oks: boolean[]) => oks.map((ok, i) => ({ name: i === 0 ? "primary" : `copy${i}`, ok }));

  test("All: every destination; AtLeastOne: any; Primary: the main target", () => {
    const table: [Parameters<typeof decide>[0], boolean[], boolean, string | undefined][] = [
      ["All", [true, true, true], true, undefined],
      ["All", [true, false, true], false, "copy1"],
      ["All", [false, false, true], false, "primary"],
      ["AtLeastOne", [false, false, true], true, undefined],
      ["AtLeastOne", [false, false, false], false, "primary"],
      ["Primary", [true, false, false], true, undefined],
      ["Primary", [false, true, true], false, "primary"],
      ["All", [true], true, undefined],
    ];
    for (const [policy, oks, ok, failedBy] of table) {
      const decision = decide(policy, outcomes(...oks));
      assert.equal(decision.ok, ok, `${policy} ${oks.join(",")}`);
      assert.equal(decision.failedBy?.name, failedBy, `${policy} ${oks.join(",")}: decided by`);
    }
  });
});

describe("destination settings", () => {
  const base = {
    CLUSTER_NAME: "bao",
    CLUSTER_NAMESPACE: "openbao",
    BACKUP_AUTH_METHOD: "token",
    BACKUP_BUCKET: "main",
  };
  const offsite = {
    name: "offsite",
    target: { provider: "gcs", bucket: "copies", pathPrefix: "dr/", gcs: { project: "p" } },
    credentialsDir: "/var/run/secrets/offsite",
  };

  test("the main target first, named BACKUP_TARGET_NAME; each additional target parsed like it", () => {
    const config = loadBackupConfig(
      {
        ...base,
        BACKUP_TARGET_NAME: "local",
        BACKUP_ADDITIONAL_TARGETS: JSON.stringify([offsite]),
        BACKUP_SUCCESS_POLICY: "Primary",
      },
      [],
    );
    assert.deepEqual(
      config.destinations.map((d) => [
        d.name,
        d.target.provider,
        d.target.bucket,
        d.target.pathPrefix,
        d.credentialsDir,
      ]),
      [
        ["local", "s3", "main", "", config.credentialsDir],
        ["offsite", "gcs", "copies", "dr", "/var/run/secrets/offsite"],
      ],
    );
    assert.equal(config.successPolicy, "Primary");
    const single = loadBackupConfig(base, []);
    assert.deepEqual(
      single.destinations.map((d) => d.name),
      ["primary"],
    );
    assert.equal(single.successPolicy, "All");
  });

  test("refused with the setting and the entry named", () => {
    const refused = (env: Record<string, string>, variable: string, message: RegExp) =>
      assert.throws(
        () => loadBackupConfig({ ...base, ...env }, []),
        (err: unknown) => err instanceof ConfigError && err.variable === variable && message.test(err.message),
        JSON.stringify(env),
      );
    const targets = (value: unknown) => ({ BACKUP_ADDITIONAL_TARGETS: JSON.stringify(value) });
    refused({ BACKUP_ADDITIONAL_TARGETS: "{" }, "BACKUP_ADDITIONAL_TARGETS", /must be a JSON array/);
    refused(targets({ name: "x" }), "BACKUP_ADDITIONAL_TARGETS", /must be a JSON array of destinations/);
    refused(targets([offsite, offsite]), "BACKUP_ADDITIONAL_TARGETS", /\[1\]\.name "offsite" is used twice/);
    refused(
      targets([{ ...offsite, name: "primary" }]),
      "BACKUP_ADDITIONAL_TARGETS",
      /\[0\]\.name "primary" is used twice/,
    );
    refused(targets([{ ...offsite, target: "gcs" }]), "BACKUP_ADDITIONAL_TARGETS", /\[0\]\.target must be an object/);
    refused(
      targets([{ ...offsite, target: { provider: "gcs", bucket: "b", encryption: { type: "AES256" } } }]),
      "BACKUP_ADDITIONAL_TARGETS",
      /\[0\] \(offsite\): target\.encryption\.type: applies to provider s3 only/,
    );
    refused(
      targets([{ ...offsite, target: { bucket: "b", objectLock: { mode: "GOVERNANCE" } } }]),
      "BACKUP_ADDITIONAL_TARGETS",
      /offsite: target\.objectLock needs BACKUP_RETENTION_MAX_AGE/,
    );
    refused(
      targets(Array.from({ length: 5 }, (_, i) => ({ ...offsite, name: `c${i}` }))),
      "BACKUP_ADDITIONAL_TARGETS",
      /at most 4/,
    );
    refused(
      targets([{ ...offsite, target: { bucket: "b", pathPrefix: "/dr" } }]),
      "BACKUP_ADDITIONAL_TARGETS",
      /\[0\] \(offsite\): target\.pathPrefix: "\/dr" must not start with "\/"/,
    );
    refused({ BACKUP_TARGET_NAME: "Main Site" }, "BACKUP_TARGET_NAME", /at most 40 lower-case letters/);
    refused(
      { BACKUP_SUCCESS_POLICY: "Primary" },
      "BACKUP_SUCCESS_POLICY",
      /applies with BACKUP_ADDITIONAL_TARGETS only/,
    );
    refused(
      { ...targets([offsite]), BACKUP_SUCCESS_POLICY: "any" },
      "BACKUP_SUCCESS_POLICY",
      /must be All, AtLeastOne, Primary/,
    );
  });
});
