/**
 * Admission tables for the CRDs of src/api/schema.ts, as plain data for any test that
 * installs the CRDs into a real kube-apiserver (no fixtures imported here):
 *
 * - `goodSpecs`: objects the API server must accept. `preserved` lists paths that must still
 *   be there when read back (a lifecycle operator's fields are kept, not pruned).
 * - `badSpecs`: objects it must reject, each with the field the rejection must name (in
 *   `details.causes[].field` of the 422 Status, or in its message). When `updates` is set,
 *   `object` is created first and must be accepted; then each update replaces the object
 *   (PUT with the current resourceVersion; through `/status` when `subresource` is "status");
 *   every update but the last must be accepted, the last must be rejected.
 * - `fieldValidation: "Strict"` marks a case that is only rejected when the request asks for
 *   strict field validation (kubectl's default); otherwise the unknown field is pruned. Such a
 *   rejection is a 400 ("strict decoding error: unknown field "<field>"", no causes), not a 422.
 *
 * Names are unique per table, so every case can be created in one namespace.
 */

export type Kind = "OpenBaoCluster" | "OpenBaoRestore";

export interface ResourceObject {
  apiVersion: "openbao.org/v1alpha1";
  kind: Kind;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [extra: string]: unknown;
}

export interface GoodSpec {
  name: string;
  object: ResourceObject;
  /** Dotted paths (from the object root) that must survive the round trip. */
  preserved?: string[];
}

export interface BadUpdate {
  object: ResourceObject;
  subresource?: "status";
}

export interface BadSpec {
  name: string;
  object: ResourceObject;
  updates?: BadUpdate[];
  /** The field the rejection must name, e.g. `spec.backup.schedule`. */
  field: string;
  /** Further fields the rejection's message must name (two spellings of one switch that disagree). */
  alsoNamed?: string[];
  fieldValidation?: "Strict";
  /** HTTP status of the rejection; 422 unless given. */
  code?: 400 | 422;
}

const apiVersion = "openbao.org/v1alpha1";

function cluster(name: string, spec: Record<string, unknown>, status?: Record<string, unknown>): ResourceObject {
  return { apiVersion, kind: "OpenBaoCluster", metadata: { name }, spec, ...(status ? { status } : {}) };
}

function restore(name: string, spec: Record<string, unknown>, status?: Record<string, unknown>): ResourceObject {
  return { apiVersion, kind: "OpenBaoRestore", metadata: { name }, spec, ...(status ? { status } : {}) };
}

const s3Target = {
  provider: "s3",
  endpoint: "http://minio.storage:9000",
  bucket: "openbao-backups",
  usePathStyle: true,
};
const backup = { schedule: "0 3 * * *", jwtAuthRole: "backup", target: s3Target };
const base = { replicas: 3, version: "2.4.1", backup };

/** `spec` of a valid cluster with `spec.backup` replaced by `backup` merged over the default. */
function withBackup(patch: Record<string, unknown>): Record<string, unknown> {
  return { ...base, backup: { ...backup, ...patch } };
}

function withTarget(patch: Record<string, unknown>): Record<string, unknown> {
  return withBackup({ target: { ...s3Target, ...patch } });
}

const { jwtAuthRole: _jwt, ...backupWithoutAuth } = backup;
const { schedule: _schedule, ...backupWithoutSchedule } = backup;
const { target: _target, ...backupWithoutTarget } = backup;
const { bucket: _bucket, ...s3TargetWithoutBucket } = s3Target;

const restoreSpec = {
  cluster: "prod",
  source: { target: s3Target, key: "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap" },
  jwtAuthRole: "restore",
};

export const goodSpecs: GoodSpec[] = [
  { name: "s3 with JWT auth", object: cluster("good-s3", base) },
  {
    name: "s3 with everything set",
    object: cluster(
      "good-s3-full",
      withBackup({
        timeZone: "Europe/Berlin",
        suspend: false,
        image: "ghcr.io/openbao/openbao-backup:0.1.0",
        jwtAuthPath: "k8s/jwt",
        openbaoAddresses: ["https://good-s3-full-0.good-s3-full.vault.svc:8200", "http://10.0.0.7:8200"],
        tlsSecretRef: { name: "bao-tls-ca" },
        target: {
          ...s3Target,
          pathPrefix: "clusters/prod/",
          region: "eu-west-1",
          roleArn: "arn:aws:iam::123456789012:role/backup-role",
          credentialsSecretRef: { name: "s3-credentials" },
          partSize: 20971520,
          concurrency: 16,
          insecureSkipVerify: true,
        },
        retention: { maxCount: 7, maxAge: "168h" },
        activeDeadlineSeconds: 600,
        serviceAccount: { annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/backup-role" } },
        podLabels: { "azure.workload.identity/use": "true" },
        podAnnotations: { "example.com/note": "anything: goes here" },
      }),
    ),
  },
  {
    name: "static token auth, default key",
    object: cluster("good-token", withBackup({ jwtAuthRole: undefined, tokenSecretRef: { name: "backup-token" } })),
  },
  {
    name: "gcs with a project and no credentials (ADC)",
    object: cluster(
      "good-gcs",
      withBackup({ target: { provider: "gcs", bucket: "openbao-backups", gcs: { project: "my-gcp-project" } } }),
    ),
  },
  {
    name: "azure with the container given only in azure.container",
    object: cluster(
      "good-azure",
      withBackup({
        target: {
          provider: "azure",
          endpoint: "http://127.0.0.1:10000/devstoreaccount1",
          azure: { storageAccount: "devstoreaccount1", container: "openbao-backups" },
          credentialsSecretRef: { name: "azure-credentials" },
        },
      }),
    ),
  },
  ...[
    "* * * * *",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "*/15 0-6/2 1,15 JAN-jun mon-FRI",
    "0 0 * * 7",
  ].map(
    (schedule, i): GoodSpec => ({
      name: `schedule ${schedule}`,
      object: cluster(`good-schedule-${i}`, withBackup({ schedule })),
    }),
  ),
  {
    name: "a lifecycle operator's own spec and status fields are preserved",
    object: cluster(
      "good-lifecycle",
      { ...base, image: "openbao/openbao:2.4.1", upgrade: { preUpgradeSnapshot: true, strategy: "RollingUpdate" } },
      {},
    ),
    preserved: ["spec.image", "spec.upgrade.strategy", "spec.upgrade.preUpgradeSnapshot"],
  },
  { name: "a cluster without backup", object: cluster("good-no-backup", { replicas: 1, version: "v2.5.0-rc.1" }) },
  {
    // Issue 15 defect 7: the BackupManager's configuration table spells the switch this way.
    name: "preUpgradeSnapshot under spec.backup",
    object: cluster("good-pre-upgrade-backup", withBackup({ preUpgradeSnapshot: true })),
    preserved: ["spec.backup.preUpgradeSnapshot"],
  },
  {
    name: "preUpgradeSnapshot under spec.upgrade and spec.backup with the same value",
    object: cluster("good-pre-upgrade-both", {
      ...base,
      upgrade: { preUpgradeSnapshot: true },
      backup: { ...backup, preUpgradeSnapshot: true },
    }),
    preserved: ["spec.upgrade.preUpgradeSnapshot", "spec.backup.preUpgradeSnapshot"],
  },
  {
    name: "preUpgradeSnapshot false under both",
    object: cluster("good-pre-upgrade-both-off", {
      ...base,
      upgrade: { preUpgradeSnapshot: false },
      backup: { ...backup, preUpgradeSnapshot: false },
    }),
  },
  {
    name: "endpoints at a private dotted-quad IPv4, an ordinary IPv6 literal and a DNS name starting with digits",
    object: cluster(
      "good-endpoints",
      withBackup({
        openbaoAddresses: ["https://[2001:db8::10]:8200", "https://127.0.0.1:8200", "https://0bao.example.com:8200"],
        target: { ...s3Target, endpoint: "http://10.0.0.7:9000" },
      }),
    ),
  },
  {
    name: "a token Secret named like another cluster's root token",
    object: cluster(
      "good-other-secret",
      withBackup({ jwtAuthRole: undefined, tokenSecretRef: { name: "prod-root-token" } }),
    ),
  },
  {
    name: "s3 with SSE-KMS and a named key",
    object: cluster("good-sse-kms", withTarget({ encryption: { type: "aws:kms", kmsKeyId: "alias/openbao-backups" } })),
    preserved: ["spec.backup.target.encryption.type", "spec.backup.target.encryption.kmsKeyId"],
  },
  { name: "s3 with SSE-S3", object: cluster("good-sse-s3", withTarget({ encryption: { type: "AES256" } })) },
  {
    name: "two additional targets (gcs and azure) with a success policy",
    object: cluster(
      "good-destinations",
      withBackup({
        additionalTargets: [
          { name: "gcs-copy", provider: "gcs", bucket: "copies", credentialsSecretRef: { name: "gcs-creds" } },
          { name: "azure-copy", provider: "azure", bucket: "copies", azure: { storageAccount: "account1" } },
        ],
        successPolicy: "AtLeastOne",
      }),
    ),
    preserved: ["spec.backup.additionalTargets", "spec.backup.successPolicy"],
  },
  {
    name: "restore drills with every field",
    object: cluster(
      "good-drill",
      withBackup({
        drill: {
          schedule: "0 5 * * 0",
          timeZone: "Europe/Berlin",
          suspend: false,
          key: "latest",
          image: "quay.io/openbao/openbao:2.4.0",
          unsealKeysSecretRef: { name: "bao-unseal-keys" },
          canaryPath: "secret/openbao-backup/canary",
          activeDeadlineSeconds: 1800,
          openbaoResources: { requests: { cpu: "200m", memory: "512Mi" }, limits: { memory: "2Gi" } },
        },
      }),
    ),
    preserved: [
      "spec.backup.drill.unsealKeysSecretRef",
      "spec.backup.drill.canaryPath",
      "spec.backup.drill.openbaoResources",
    ],
  },
  {
    name: "a restore drill with a Transit seal stanza",
    object: cluster(
      "good-drill-seal",
      withBackup({ drill: { schedule: "@weekly", sealConfigSecretRef: { name: "seal" } } }),
    ),
    preserved: ["spec.backup.drill.sealConfigSecretRef"],
  },
  {
    name: "s3 with Object Lock, a grace and a legal hold on pre-upgrade snapshots, and retention.maxAge",
    object: cluster(
      "good-object-lock",
      withBackup({
        target: { ...s3Target, objectLock: { mode: "COMPLIANCE", grace: "12h", preUpgradeLegalHold: true } },
        retention: { maxCount: 30, maxAge: "30d" },
      }),
    ),
    preserved: [
      "spec.backup.target.objectLock.mode",
      "spec.backup.target.objectLock.grace",
      "spec.backup.target.objectLock.preUpgradeLegalHold",
    ],
  },
  {
    name: "gcs with a customer-managed key",
    object: cluster(
      "good-gcs-cmek",
      withBackup({
        target: {
          provider: "gcs",
          bucket: "openbao-backups",
          encryption: { kmsKeyName: "projects/my-project/locations/europe-west1/keyRings/backups/cryptoKeys/openbao" },
        },
      }),
    ),
    preserved: ["spec.backup.target.encryption.kmsKeyName"],
  },
  {
    name: "azure with an encryption scope",
    object: cluster(
      "good-azure-scope",
      withBackup({
        target: {
          provider: "azure",
          bucket: "backups",
          azure: { storageAccount: "account1" },
          encryption: { encryptionScope: "openbao-backups" },
        },
      }),
    ),
    preserved: ["spec.backup.target.encryption.encryptionScope"],
  },
  {
    name: "restore from a target with SSE-KMS",
    object: restore("good-restore-sse", {
      ...restoreSpec,
      source: { ...restoreSpec.source, target: { ...s3Target, encryption: { type: "aws:kms", kmsKeyId: "k1" } } },
    }),
  },
  { name: "restore with JWT auth", object: restore("good-restore", restoreSpec) },
  {
    // The source is the cluster's own spec.backup.target, resolved by the operator (issue 14).
    name: "restore without a target, of the newest verified backup",
    object: restore("good-restore-own-target", { ...restoreSpec, source: { key: "latest" } }),
  },
  {
    name: "forced restore overriding the lock, static token",
    object: restore("good-restore-force", {
      ...restoreSpec,
      jwtAuthRole: undefined,
      tokenSecretRef: { name: "restore-token", key: "bao-token" },
      force: true,
      overrideOperationLock: true,
    }),
  },
];

// JSON has no `undefined`: drop it the way a request body would.
for (const good of goodSpecs) good.object = JSON.parse(JSON.stringify(good.object)) as ResourceObject;

/**
 * Hosts a Job must never connect to (link-local and cloud metadata services) and every way of
 * spelling an IPv4 address other than four decimal numbers — each one a URL parser (and so
 * `fetch`) resolves to 169.254.169.254 or another address — as `[what, url]`.
 */
export const hostileEndpoints: [string, string][] = [
  ["link-local 169.254.10.10", "http://169.254.10.10:9000"],
  ["metadata 169.254.169.254", "http://169.254.169.254"],
  ["metadata.google.internal", "http://metadata.google.internal/computeMetadata/v1"],
  ["METADATA.Google.Internal (upper case)", "http://METADATA.Google.Internal"],
  ["bare metadata host", "http://metadata:80"],
  ["AWS instance-data host", "http://instance-data"],
  ["AWS IPv6 metadata [fd00:ec2::254]", "http://[fd00:ec2::254]"],
  ["AWS IPv6 metadata with zeros [fd00:0ec2:0:0:0:0:0:254]", "http://[fd00:0ec2:0:0:0:0:0:254]"],
  ["Alibaba metadata 100.100.100.200", "http://100.100.100.200"],
  ["IPv6 link-local [fe80::1]", "https://[fe80::1]:9000"],
  ["IPv6 link-local [FEBF::1] (upper case, end of fe80::/10)", "https://[FEBF::1]:9000"],
  ["decimal IPv4 2852039166", "http://2852039166"],
  ["hex IPv4 0xA9FEA9FE", "http://0xA9FEA9FE"],
  ["octal IPv4 0251.0376.0251.0376", "http://0251.0376.0251.0376"],
  ["shortened IPv4 169.254.43518", "http://169.254.43518"],
  ["mixed hex/octal/decimal IPv4 0xa9.254.0251.0xfe", "http://0xa9.254.0251.0xfe:80"],
  ["hex loopback 0x7f000001", "http://0x7f000001:9000"],
  ["shortened loopback 127.1", "http://127.1:9000"],
  ["leading zero 010.0.0.7", "http://010.0.0.7:9000"],
  ["IPv4-mapped IPv6 [::ffff:169.254.169.254]", "http://[::ffff:169.254.169.254]"],
  ["IPv4-mapped IPv6 in hex [::ffff:a9fe:a9fe]", "http://[::ffff:a9fe:a9fe]"],
  ["IPv4-mapped IPv6 uncompressed [0:0:0:0:0:ffff:a9fe:a9fe]", "http://[0:0:0:0:0:ffff:a9fe:a9fe]"],
  ["trailing dot 169.254.169.254.", "http://169.254.169.254./"],
  ["percent-encoded host 169.254.169%2e254", "http://169.254.169%2e254"],
  [
    "full-width digits (IDNA maps them to 169.254.169.254)",
    "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14",
  ],
  ["ideographic full stops (IDNA maps them to dots)", "http://169\u3002254\u3002169\u3002254"],
];

const clusterCases: [
  string,
  Record<string, unknown>,
  string,
  Pick<BadSpec, "fieldValidation" | "code" | "alsoNamed">?,
][] = [
  ["schedule in words", withBackup({ schedule: "every day at 3" }), "spec.backup.schedule"],
  ["schedule with a seconds field", withBackup({ schedule: "0 0 3 * * *" }), "spec.backup.schedule"],
  ["schedule nickname @reboot", withBackup({ schedule: "@reboot" }), "spec.backup.schedule"],
  ["schedule with Quartz ?", withBackup({ schedule: "0 0 ? * *" }), "spec.backup.schedule"],
  ["schedule minute 60", withBackup({ schedule: "60 * * * *" }), "spec.backup.schedule"],
  ["schedule day-of-week 8", withBackup({ schedule: "0 0 * * 8" }), "spec.backup.schedule"],
  ["schedule missing", { ...base, backup: backupWithoutSchedule }, "spec.backup.schedule"],
  ["timeZone with a space", withBackup({ timeZone: "Mars Base" }), "spec.backup.timeZone"],
  ["timeZone as an offset", withBackup({ timeZone: "+02:00" }), "spec.backup.timeZone"],
  ["timeZone Local", withBackup({ timeZone: "Local" }), "spec.backup.timeZone"],
  ["timeZone as a file path", withBackup({ timeZone: "../../etc/localtime" }), "spec.backup.timeZone"],
  ["timeZone empty", withBackup({ timeZone: "" }), "spec.backup.timeZone"],
  ["schedule with a trailing newline", withBackup({ schedule: "0 3 * * *\n" }), "spec.backup.schedule"],
  ["schedule step 0", withBackup({ schedule: "*/0 * * * *" }), "spec.backup.schedule"],
  ["schedule hour 24", withBackup({ schedule: "0 24 * * *" }), "spec.backup.schedule"],
  ["schedule empty", withBackup({ schedule: "" }), "spec.backup.schedule"],
  ["suspend as a string", withBackup({ suspend: "yes" }), "spec.backup.suspend"],
  ["target missing", { ...base, backup: backupWithoutTarget }, "spec.backup.target"],
  ["unknown provider", withTarget({ provider: "minio" }), "spec.backup.target.provider"],
  ["provider in upper case", withTarget({ provider: "S3" }), "spec.backup.target.provider"],
  ["provider empty", withTarget({ provider: "" }), "spec.backup.target.provider"],
  ["endpoint without scheme", withTarget({ endpoint: "s3.amazonaws.com" }), "spec.backup.target.endpoint"],
  ["endpoint ftp://", withTarget({ endpoint: "ftp://files.example.com" }), "spec.backup.target.endpoint"],
  [
    "endpoint with credentials",
    withTarget({ endpoint: "https://user:pw@s3.example.com" }),
    "spec.backup.target.endpoint",
  ],
  ["endpoint with a query", withTarget({ endpoint: "https://s3.example.com/?x=1" }), "spec.backup.target.endpoint"],
  ...hostileEndpoints.map(([what, endpoint]): [string, Record<string, unknown>, string] => [
    `endpoint at ${what}`,
    withTarget({ endpoint }),
    "spec.backup.target.endpoint",
  ]),
  ...hostileEndpoints.map(([what, address]): [string, Record<string, unknown>, string] => [
    `openbaoAddresses at ${what}`,
    withBackup({ openbaoAddresses: [address] }),
    "spec.backup.openbaoAddresses[0]",
  ]),
  ["bucket missing", withBackup({ target: s3TargetWithoutBucket }), "spec.backup.target.bucket"],
  ["bucket with a folder", withTarget({ bucket: "openbao/backups" }), "spec.backup.target.bucket"],
  ["pathPrefix absolute", withTarget({ pathPrefix: "/backups" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with ..", withTarget({ pathPrefix: "a/../b" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with .", withTarget({ pathPrefix: "./backups" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with //", withTarget({ pathPrefix: "a//b" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with a backslash", withTarget({ pathPrefix: "a\\b" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with a newline", withTarget({ pathPrefix: "a\nb" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix ..", withTarget({ pathPrefix: ".." }), "spec.backup.target.pathPrefix"],
  ["pathPrefix ending in /..", withTarget({ pathPrefix: "backups/.." }), "spec.backup.target.pathPrefix"],
  ["pathPrefix /", withTarget({ pathPrefix: "/" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix //backups", withTarget({ pathPrefix: "//backups" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with NUL", withTarget({ pathPrefix: "a\u0000b" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with a tab", withTarget({ pathPrefix: "a\tb" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with DEL", withTarget({ pathPrefix: "a\u007fb" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with C1 NEL", withTarget({ pathPrefix: "a\u0085b" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix with an ANSI escape", withTarget({ pathPrefix: "a\u001b[31mb" }), "spec.backup.target.pathPrefix"],
  ["pathPrefix over 512 bytes", withTarget({ pathPrefix: "é".repeat(300) }), "spec.backup.target.pathPrefix"],
  ["region with a space", withTarget({ region: "eu west" }), "spec.backup.target.region"],
  ["partSize below 5 MiB", withTarget({ partSize: 1048576 }), "spec.backup.target.partSize"],
  ["partSize above 5 GiB", withTarget({ partSize: 6 * 1024 ** 3 }), "spec.backup.target.partSize"],
  ["partSize not an integer", withTarget({ partSize: "10Mi" }), "spec.backup.target.partSize"],
  ["concurrency 0", withTarget({ concurrency: 0 }), "spec.backup.target.concurrency"],
  ["concurrency 17", withTarget({ concurrency: 17 }), "spec.backup.target.concurrency"],
  ["concurrency negative", withTarget({ concurrency: -1 }), "spec.backup.target.concurrency"],
  ["concurrency fractional", withTarget({ concurrency: 2.5 }), "spec.backup.target.concurrency"],
  ["partSize negative", withTarget({ partSize: -5242880 }), "spec.backup.target.partSize"],
  ["partSize beyond 2^53", withTarget({ partSize: 2 ** 60 }), "spec.backup.target.partSize"],
  ["roleArn not an ARN", withTarget({ roleArn: "backup-role" }), "spec.backup.target.roleArn"],
  [
    "roleArn for gcs",
    withBackup({
      target: { provider: "gcs", bucket: "b-1", roleArn: "arn:aws:iam::123456789012:role/backup-role" },
    }),
    "spec.backup.target.roleArn",
  ],
  ["gcs block for s3", withTarget({ gcs: { project: "my-project" } }), "spec.backup.target.gcs"],
  [
    "gcs project with upper case",
    withBackup({ target: { provider: "gcs", bucket: "b-1", gcs: { project: "My Project" } } }),
    "spec.backup.target.gcs.project",
  ],
  [
    "azure without storage account",
    withBackup({ target: { provider: "azure", bucket: "backups" } }),
    "spec.backup.target.azure",
  ],
  ["azure block for s3", withTarget({ azure: { storageAccount: "account1" } }), "spec.backup.target.azure"],
  [
    "azure storage account with upper case",
    withBackup({ target: { provider: "azure", bucket: "backups", azure: { storageAccount: "My_Account" } } }),
    "spec.backup.target.azure.storageAccount",
  ],
  [
    "azure container with a double hyphen",
    withBackup({ target: { provider: "azure", azure: { storageAccount: "account1", container: "bad--name" } } }),
    "spec.backup.target.azure.container",
  ],
  [
    "azure partSize above 4000 MiB",
    withBackup({
      target: {
        provider: "azure",
        bucket: "backups",
        azure: { storageAccount: "account1" },
        partSize: 4500 * 1024 * 1024,
      },
    }),
    "spec.backup.target.partSize",
  ],
  [
    "two additional targets with one name",
    withBackup({
      additionalTargets: [
        { name: "copy", bucket: "a" },
        { name: "copy", bucket: "b" },
      ],
    }),
    "spec.backup.additionalTargets[1]",
  ],
  [
    "an additional target named primary",
    withBackup({ additionalTargets: [{ name: "primary", bucket: "a" }] }),
    "spec.backup.additionalTargets[0].name",
  ],
  [
    "an additional target without a name",
    withBackup({ additionalTargets: [{ bucket: "a" }] }),
    "spec.backup.additionalTargets[0].name",
  ],
  [
    "an additional target without a bucket",
    withBackup({ additionalTargets: [{ name: "copy", provider: "gcs" }] }),
    "spec.backup.additionalTargets[0].bucket",
  ],
  [
    "an additional gcs target with an S3 encryption type",
    withBackup({ additionalTargets: [{ name: "copy", provider: "gcs", bucket: "b", encryption: { type: "AES256" } }] }),
    "spec.backup.additionalTargets[0].encryption.type",
  ],
  [
    "five additional targets",
    withBackup({ additionalTargets: ["a", "b", "c", "d", "e"].map((name) => ({ name, bucket: name })) }),
    "spec.backup.additionalTargets",
  ],
  [
    "an additional target with objectLock and no retention.maxAge",
    withBackup({ additionalTargets: [{ name: "copy", bucket: "b", objectLock: { mode: "GOVERNANCE" } }] }),
    "spec.backup.retention",
  ],
  [
    "a drill without a schedule",
    withBackup({ drill: { canaryPath: "secret/x/canary" } }),
    "spec.backup.drill.schedule",
  ],
  ["a drill schedule with seconds", withBackup({ drill: { schedule: "0 0 5 * * 0" } }), "spec.backup.drill.schedule"],
  [
    "a drill with both unseal keys and a seal stanza",
    withBackup({
      drill: { schedule: "@weekly", unsealKeysSecretRef: { name: "k" }, sealConfigSecretRef: { name: "s" } },
    }),
    "spec.backup.drill.sealConfigSecretRef",
  ],
  [
    "a drill canary path with a .. segment",
    withBackup({ drill: { schedule: "@weekly", canaryPath: "secret/../sys/canary" } }),
    "spec.backup.drill.canaryPath",
  ],
  [
    "a drill canary path without a mount",
    withBackup({ drill: { schedule: "@weekly", canaryPath: "canary" } }),
    "spec.backup.drill.canaryPath",
  ],
  [
    "a drill keys Secret in another namespace's notation",
    withBackup({ drill: { schedule: "@weekly", unsealKeysSecretRef: { name: "other/keys" } } }),
    "spec.backup.drill.unsealKeysSecretRef.name",
  ],
  [
    "a success policy without additional targets",
    withBackup({ successPolicy: "Primary" }),
    "spec.backup.successPolicy",
  ],
  [
    "an unknown success policy",
    withBackup({ additionalTargets: [{ name: "copy", bucket: "b" }], successPolicy: "Most" }),
    "spec.backup.successPolicy",
  ],
  [
    "objectLock without retention.maxAge",
    withBackup({ target: { ...s3Target, objectLock: { mode: "GOVERNANCE" } }, retention: { maxCount: 3 } }),
    "spec.backup.retention",
  ],
  ["objectLock without retention", withTarget({ objectLock: { mode: "GOVERNANCE" } }), "spec.backup.retention"],
  [
    "objectLock on gcs",
    withBackup({
      target: { provider: "gcs", bucket: "b", objectLock: { mode: "GOVERNANCE" } },
      retention: { maxAge: "7d" },
    }),
    "spec.backup.target.objectLock",
  ],
  [
    "objectLock mode in lower case",
    withBackup({ target: { ...s3Target, objectLock: { mode: "governance" } }, retention: { maxAge: "7d" } }),
    "spec.backup.target.objectLock.mode",
  ],
  [
    "objectLock without a mode",
    withBackup({ target: { ...s3Target, objectLock: { grace: "1h" } }, retention: { maxAge: "7d" } }),
    "spec.backup.target.objectLock.mode",
  ],
  [
    "objectLock grace not a duration",
    withBackup({
      target: { ...s3Target, objectLock: { mode: "COMPLIANCE", grace: "one day" } },
      retention: { maxAge: "7d" },
    }),
    "spec.backup.target.objectLock.grace",
  ],
  [
    "encryption type unknown",
    withTarget({ encryption: { type: "aws:kms:dsse" } }),
    "spec.backup.target.encryption.type",
  ],
  ["encryption empty on s3", withTarget({ encryption: {} }), "spec.backup.target.encryption.type"],
  [
    "kmsKeyId with AES256",
    withTarget({ encryption: { type: "AES256", kmsKeyId: "k1" } }),
    "spec.backup.target.encryption.kmsKeyId",
  ],
  ["kmsKeyId without a type", withTarget({ encryption: { kmsKeyId: "k1" } }), "spec.backup.target.encryption.kmsKeyId"],
  [
    "kmsKeyId with a space",
    withTarget({ encryption: { type: "aws:kms", kmsKeyId: "my key" } }),
    "spec.backup.target.encryption.kmsKeyId",
  ],
  [
    "kmsKeyName on s3",
    withTarget({ encryption: { type: "AES256", kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" } }),
    "spec.backup.target.encryption.kmsKeyName",
  ],
  [
    "encryptionScope on s3",
    withTarget({ encryption: { type: "AES256", encryptionScope: "scope-1" } }),
    "spec.backup.target.encryption.encryptionScope",
  ],
  [
    "SSE type on gcs",
    withBackup({ target: { provider: "gcs", bucket: "b-1", encryption: { type: "AES256" } } }),
    "spec.backup.target.encryption.type",
  ],
  [
    "encryption empty on gcs",
    withBackup({ target: { provider: "gcs", bucket: "b-1", encryption: {} } }),
    "spec.backup.target.encryption.kmsKeyName",
  ],
  [
    "kmsKeyName with a key version",
    withBackup({
      target: {
        provider: "gcs",
        bucket: "b-1",
        encryption: { kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1" },
      },
    }),
    "spec.backup.target.encryption.kmsKeyName",
  ],
  [
    "kmsKeyName not a Cloud KMS key",
    withBackup({ target: { provider: "gcs", bucket: "b-1", encryption: { kmsKeyName: "openbao" } } }),
    "spec.backup.target.encryption.kmsKeyName",
  ],
  [
    "kmsKeyName on azure",
    withBackup({
      target: {
        provider: "azure",
        bucket: "backups",
        azure: { storageAccount: "account1" },
        encryption: { encryptionScope: "scope-1", kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" },
      },
    }),
    "spec.backup.target.encryption.kmsKeyName",
  ],
  [
    "encryption empty on azure",
    withBackup({
      target: { provider: "azure", bucket: "backups", azure: { storageAccount: "account1" }, encryption: {} },
    }),
    "spec.backup.target.encryption.encryptionScope",
  ],
  [
    "encryptionScope with upper case",
    withBackup({
      target: {
        provider: "azure",
        bucket: "backups",
        azure: { storageAccount: "account1" },
        encryption: { encryptionScope: "Scope1" },
      },
    }),
    "spec.backup.target.encryption.encryptionScope",
  ],
  [
    "credentialsSecretRef with a path",
    withTarget({ credentialsSecretRef: { name: "../other" } }),
    "spec.backup.target.credentialsSecretRef.name",
  ],
  ["retention maxCount 0", withBackup({ retention: { maxCount: 0 } }), "spec.backup.retention.maxCount"],
  ["retention maxAge in words", withBackup({ retention: { maxAge: "7 days" } }), "spec.backup.retention.maxAge"],
  ["retention maxAge zero", withBackup({ retention: { maxAge: "0s" } }), "spec.backup.retention.maxAge"],
  ["retention maxAge negative", withBackup({ retention: { maxAge: "-1h" } }), "spec.backup.retention.maxAge"],
  ["retention empty", withBackup({ retention: {} }), "spec.backup.retention"],
  ["retention maxAge with a unit y", withBackup({ retention: { maxAge: "1y" } }), "spec.backup.retention.maxAge"],
  ["retention maxAge without a unit", withBackup({ retention: { maxAge: "7" } }), "spec.backup.retention.maxAge"],
  ["activeDeadlineSeconds negative", withBackup({ activeDeadlineSeconds: -1 }), "spec.backup.activeDeadlineSeconds"],
  ["activeDeadlineSeconds 0", withBackup({ activeDeadlineSeconds: 0 }), "spec.backup.activeDeadlineSeconds"],
  [
    "resources memory limit that is not a quantity",
    withBackup({ resources: { limits: { memory: "lots" } } }),
    "spec.backup.resources.limits.memory",
  ],
  [
    "resources memory request above its limit",
    withBackup({ resources: { requests: { memory: "1Gi" }, limits: { memory: "512Mi" } } }),
    "spec.backup.resources.requests.memory",
  ],
  ["replicas 0", { ...base, replicas: 0 }, "spec.replicas"],
  ["version latest", { ...base, version: "latest" }, "spec.version"],
  ["no auth", { ...base, backup: backupWithoutAuth }, "spec.backup.jwtAuthRole"],
  ["both auth methods", withBackup({ tokenSecretRef: { name: "backup-token" } }), "spec.backup.tokenSecretRef"],
  [
    "jwtAuthPath with a static token",
    { ...base, backup: { ...backupWithoutAuth, tokenSecretRef: { name: "t" }, jwtAuthPath: "jwt" } },
    "spec.backup.jwtAuthPath",
  ],
  ["jwtAuthPath with auth/", withBackup({ jwtAuthPath: "auth/jwt" }), "spec.backup.jwtAuthPath"],
  ["jwtAuthRole with a space", withBackup({ jwtAuthRole: "backup role" }), "spec.backup.jwtAuthRole"],
  [
    "tokenSecretRef name not a Secret name",
    { ...base, backup: { ...backupWithoutAuth, tokenSecretRef: { name: "Backup_Token" } } },
    "spec.backup.tokenSecretRef.name",
  ],
  [
    "tokenSecretRef without name",
    { ...base, backup: { ...backupWithoutAuth, tokenSecretRef: { key: "token" } } },
    "spec.backup.tokenSecretRef.name",
  ],
  [
    "tokenSecretRef key with a slash",
    { ...base, backup: { ...backupWithoutAuth, tokenSecretRef: { name: "t", key: "a/b" } } },
    "spec.backup.tokenSecretRef.key",
  ],
  [
    "tokenSecretRef in another namespace",
    { ...base, backup: { ...backupWithoutAuth, tokenSecretRef: { name: "t", namespace: "other" } } },
    "spec.backup.tokenSecretRef.namespace",
    { fieldValidation: "Strict", code: 400 },
  ],
  ["tlsSecretRef name with upper case", withBackup({ tlsSecretRef: { name: "TLS" } }), "spec.backup.tlsSecretRef.name"],
  ["image with a space", withBackup({ image: "openbao backup" }), "spec.backup.image"],
  ["image and executorImage", withBackup({ image: "a:1", executorImage: "b:1" }), "spec.backup.executorImage"],
  [
    "openbaoAddresses without scheme",
    withBackup({ openbaoAddresses: ["bao-0:8200"] }),
    "spec.backup.openbaoAddresses[0]",
  ],
  [
    "openbaoAddresses duplicated",
    withBackup({ openbaoAddresses: ["https://bao-0:8200", "https://bao-0:8200"] }),
    "spec.backup.openbaoAddresses[1]",
  ],
  [
    "podLabels reserved prefix",
    withBackup({ podLabels: { "openbao.org/backup-type": "manual" } }),
    "spec.backup.podLabels",
  ],
  ["podLabels invalid value", withBackup({ podLabels: { team: "has space" } }), "spec.backup.podLabels"],
  [
    "serviceAccount annotation key with a space",
    withBackup({ serviceAccount: { annotations: { "bad key": "x" } } }),
    "spec.backup.serviceAccount.annotations",
  ],
  [
    "preUpgradeSnapshot without backup",
    { replicas: 3, version: "2.4.1", upgrade: { preUpgradeSnapshot: true } },
    "spec.upgrade.preUpgradeSnapshot",
  ],
  // Issue 15 defect 7: the seeds spell the switch two ways; both are accepted, never disagreeing.
  [
    "preUpgradeSnapshot true under spec.upgrade, false under spec.backup",
    { ...base, upgrade: { preUpgradeSnapshot: true }, backup: { ...backup, preUpgradeSnapshot: false } },
    "spec.backup.preUpgradeSnapshot",
    { alsoNamed: ["spec.upgrade.preUpgradeSnapshot"] },
  ],
  [
    "preUpgradeSnapshot false under spec.upgrade, true under spec.backup",
    { ...base, upgrade: { preUpgradeSnapshot: false }, backup: { ...backup, preUpgradeSnapshot: true } },
    "spec.backup.preUpgradeSnapshot",
    { alsoNamed: ["spec.upgrade.preUpgradeSnapshot"] },
  ],
  [
    "preUpgradeSnapshot under spec.backup as a string",
    withBackup({ preUpgradeSnapshot: "yes" }),
    "spec.backup.preUpgradeSnapshot",
  ],
];

const restoreCases: [string, Record<string, unknown>, string][] = [
  ["restore without cluster", { source: restoreSpec.source, jwtAuthRole: "restore" }, "spec.cluster"],
  ["restore cluster not a name", { ...restoreSpec, cluster: "Prod_1" }, "spec.cluster"],
  ["restore without key", { ...restoreSpec, source: { target: s3Target } }, "spec.source.key"],
  ["restore key absolute", { ...restoreSpec, source: { target: s3Target, key: "/backups/x.snap" } }, "spec.source.key"],
  [
    "restore key of a manifest",
    { ...restoreSpec, source: { target: s3Target, key: "a/b.snap.json" } },
    "spec.source.key",
  ],
  [
    "restore target pathPrefix with ..",
    { ...restoreSpec, source: { ...restoreSpec.source, target: { ...s3Target, pathPrefix: "../x" } } },
    "spec.source.target.pathPrefix",
  ],
  ["restore override without force", { ...restoreSpec, overrideOperationLock: true }, "spec.overrideOperationLock"],
  [
    "restore override with force false",
    { ...restoreSpec, force: false, overrideOperationLock: true },
    "spec.overrideOperationLock",
  ],
  ["restore without auth", { cluster: "prod", source: restoreSpec.source }, "spec.jwtAuthRole"],
  ["restore with both auth methods", { ...restoreSpec, tokenSecretRef: { name: "t" } }, "spec.tokenSecretRef"],
  [
    "restore with the cluster's root-token Secret",
    { ...restoreSpec, jwtAuthRole: undefined, tokenSecretRef: { name: "prod-root-token" } },
    "spec.tokenSecretRef.name",
  ],
  [
    "restore with the cluster's unseal-key Secret as token",
    { ...restoreSpec, jwtAuthRole: undefined, tokenSecretRef: { name: "prod-unseal-key", key: "key" } },
    "spec.tokenSecretRef.name",
  ],
  [
    "restore with the cluster's unseal-key Secret as storage credentials",
    {
      ...restoreSpec,
      source: { ...restoreSpec.source, target: { ...s3Target, credentialsSecretRef: { name: "prod-unseal-key" } } },
    },
    "spec.source.target.credentialsSecretRef.name",
  ],
  [
    "restore target with a GCS key on s3",
    {
      ...restoreSpec,
      source: {
        ...restoreSpec.source,
        target: { ...s3Target, encryption: { kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k" } },
      },
    },
    "spec.source.target.encryption.kmsKeyName",
  ],
  [
    "restore target endpoint at metadata 169.254.169.254",
    { ...restoreSpec, source: { ...restoreSpec.source, target: { ...s3Target, endpoint: "http://169.254.169.254" } } },
    "spec.source.target.endpoint",
  ],
  [
    "restore target endpoint at decimal IPv4 2852039166",
    { ...restoreSpec, source: { ...restoreSpec.source, target: { ...s3Target, endpoint: "http://2852039166" } } },
    "spec.source.target.endpoint",
  ],
];

/** A cluster named `name` whose backup references `<name>-<suffix>` at `ref` (the lifecycle operator's own Secrets). */
function ownSecretCase(name: string, ref: "token" | "tls" | "credentials", suffix: string): BadSpec {
  const secret = { name: `${name}-${suffix}` };
  const spec =
    ref === "token"
      ? { ...base, backup: { ...backupWithoutAuth, tokenSecretRef: secret } }
      : ref === "tls"
        ? withBackup({ tlsSecretRef: secret })
        : withTarget({ credentialsSecretRef: secret });
  const field = {
    token: "spec.backup.tokenSecretRef.name",
    tls: "spec.backup.tlsSecretRef.name",
    credentials: "spec.backup.target.credentialsSecretRef.name",
  }[ref];
  return { name: `${ref} Secret ${name}-${suffix} of the cluster itself`, object: cluster(name, spec), field };
}

export const badSpecs: BadSpec[] = [
  ...clusterCases.map(
    ([name, spec, field, extra], i): BadSpec => ({ name, object: cluster(`bad-cluster-${i}`, spec), field, ...extra }),
  ),
  ...restoreCases.map(
    ([name, spec, field], i): BadSpec => ({
      name,
      object: restore(`bad-restore-${i}`, JSON.parse(JSON.stringify(spec)) as Record<string, unknown>),
      field,
    }),
  ),
  ownSecretCase("bad-own-root", "token", "root-token"),
  ownSecretCase("bad-own-unseal", "token", "unseal-key"),
  ownSecretCase("bad-own-tls", "tls", "unseal-key"),
  ownSecretCase("bad-own-creds", "credentials", "root-token"),
  ownSecretCase("bad-own-creds-unseal", "credentials", "unseal-key"),
  {
    name: "restore without spec",
    object: { apiVersion, kind: "OpenBaoRestore", metadata: { name: "bad-restore-no-spec" } },
    field: "spec",
  },
  {
    name: "restore spec changed after creation",
    object: restore("bad-restore-immutable", restoreSpec),
    updates: [{ object: restore("bad-restore-immutable", { ...restoreSpec, force: true }) }],
    field: "spec",
  },
  {
    name: "restore phase changed after Completed",
    object: restore("bad-restore-terminal", restoreSpec),
    updates: [
      { object: restore("bad-restore-terminal", restoreSpec, { phase: "Completed" }), subresource: "status" },
      { object: restore("bad-restore-terminal", restoreSpec, { phase: "Running" }), subresource: "status" },
    ],
    field: "status.phase",
  },
  {
    name: "cluster status phase outside the lifecycle contract",
    object: cluster("bad-status-phase", base),
    updates: [{ object: cluster("bad-status-phase", base, { phase: "Sleeping" }), subresource: "status" }],
    field: "status.phase",
  },
  {
    name: "operation lock holder not matching its operation",
    object: cluster("bad-status-lock", base),
    updates: [
      {
        object: cluster("bad-status-lock", base, {
          operationLock: { operation: "Backup", holder: "openbaorestore/r1", acquiredAt: "2025-03-04T05:06:07Z" },
        }),
        subresource: "status",
      },
    ],
    field: "status.operationLock",
  },
];
