/**
 * The one source of truth for the two CustomResourceDefinitions (SPEC §2): OpenAPI v3
 * schemas plus CEL rules. `scripts/generate-crds.ts` writes them to `deploy/crds/`, a unit
 * test checks those files are current, and tests install the objects returned here.
 *
 * Choices, so they are made once:
 * - Everything a person writes (spec) is checked with a CEL rule whose message names the
 *   field and the fix; with `fieldPath` the error is reported at the offending field. What
 *   the operator writes (status) is checked with plain OpenAPI `pattern`/`enum`/ranges.
 * - Defaults are not written by the API server (no schema `default`): they live in
 *   `predicates.ts` (`resolveBackupSpec`) so that the stored object stays as the user wrote
 *   it (GitOps diffs stay empty) and the image default can come from the operator's config.
 * - OpenBaoCluster is shared with a lifecycle operator: `spec`, `spec.upgrade`, `status` and
 *   `status.upgrade` preserve unknown fields; everything under `spec.backup` is fully
 *   specified, so a misspelt field is reported (kubectl's strict field validation) or pruned,
 *   never silently kept.
 * - Secret references have no namespace field: every Secret is in the resource's namespace.
 * - Auth: exactly one of `jwtAuthRole` and `tokenSecretRef` (SPEC §3 preflight requires auth;
 *   two would leave it ambiguous which one the Job uses).
 * - Every string has a `maxLength`, every list a `maxItems`, every map a `maxProperties`, so the
 *   CEL cost estimate stays within the API server's budget.
 *
 * What CEL cannot check, and where it is checked instead (the operator reports it in the
 * `BackupHealthy` condition and an Event, reason `InvalidSchedule` / `InvalidConfiguration`):
 * whether a time zone exists in the tz database; a cron step larger than its field's range
 * (a step of 90 minutes) or a range written backwards (`5-1`); a schedule that never fires (`0 0 31 2 *`); a
 * `maxAge` beyond Go's ~292-year limit. Whether the named Secrets exist and hold the keys is
 * checked at run time instead: preflight blocks the backup with `SecretNotFound` where the
 * operator may read Secrets, and the Job fails at once with `SecretNotFound` where it may not.
 */
import { loadYaml, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import {
  apiVersion,
  clusterNames,
  crdCategories,
  group,
  limits,
  reservedLabelPrefixes,
  restoreNames,
  version,
} from "./constants.ts";
import {
  azureContainerPattern,
  azureEncryptionScopePattern,
  azureStorageAccountPattern,
  bucketPattern,
  canaryLocationPattern,
  canonicalIPv4EndpointPattern,
  conditionReasonPattern,
  conditionTypePattern,
  controlCharacterPattern,
  cronSchedulePattern,
  dnsLabelPattern,
  dnsSubdomainPattern,
  dotSegmentPattern,
  durationPattern,
  embeddedIPv4EndpointPattern,
  emptySegmentPattern,
  endpointPattern,
  gcsKmsKeyNamePattern,
  gcsProjectPattern,
  labelValuePattern,
  linkLocalEndpointPattern,
  maxDestinationNameLength,
  numericHostEndpointPattern,
  openbaoMountPathPattern,
  openbaoRoleNamePattern,
  qualifiedNamePattern,
  reasonCodePattern,
  regionPattern,
  roleArnPattern,
  s3KmsKeyIdPattern,
  secretKeyPattern,
  sha256Pattern,
  timeZonePattern,
  versionPattern,
  whitespacePattern,
  zeroDurationPattern,
} from "./patterns.ts";
import { type JsonValue, toYaml } from "./yaml.ts";

// ── schema model (wire format: the keys exactly as the API server reads them) ───────────────

export type RuleReason = "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";

export interface ValidationRule {
  rule: string;
  message: string;
  /** Where the error is reported, relative to the node carrying the rule, e.g. `.roleArn`. */
  fieldPath?: string;
  reason?: RuleReason;
}

export interface Schema {
  type?: "object" | "string" | "integer" | "boolean" | "array";
  description?: string;
  format?: "int32" | "int64" | "date-time";
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema;
  items?: Schema;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  nullable?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-validations"?: ValidationRule[];
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "date" | "boolean";
  jsonPath: string;
  description?: string;
  priority?: number;
}

/** A CustomResourceDefinition as plain JSON, exactly what the YAML file holds. */
export interface CrdManifest {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    scope: "Namespaced";
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

// ── small builders ──────────────────────────────────────────────────────────────────────────

/** A CEL raw string literal holding a regular expression (no escapes are processed inside). */
function re(pattern: string): string {
  if (pattern.includes('"')) throw new Error(`pattern ${pattern} cannot be a CEL raw string`);
  return `r"${pattern}"`;
}

function rule(text: string, message: string, extra: Omit<ValidationRule, "rule" | "message"> = {}): ValidationRule {
  return { rule: text, message, ...extra };
}

function string(description: string, maxLength: number, rules: ValidationRule[] = [], extra: Schema = {}): Schema {
  return {
    type: "string",
    description,
    maxLength,
    ...extra,
    ...(rules.length > 0 ? { "x-kubernetes-validations": rules } : {}),
  };
}

function integer(description: string, extra: Schema = {}): Schema {
  return { type: "integer", description, ...extra };
}

function boolean(description: string): Schema {
  return { type: "boolean", description };
}

function time(description: string): Schema {
  return { type: "string", format: "date-time", description };
}

function object(
  description: string,
  properties: Record<string, Schema>,
  options: { required?: string[]; rules?: ValidationRule[]; extra?: Schema } = {},
): Schema {
  return {
    type: "object",
    description,
    ...(options.required && options.required.length > 0 ? { required: options.required } : {}),
    properties,
    ...options.extra,
    ...(options.rules && options.rules.length > 0 ? { "x-kubernetes-validations": options.rules } : {}),
  };
}

/** A CPU or memory quantity as Kubernetes writes it: `100m`, `0.5`, `512Mi`, `1Gi`, `2G`. */
const quantityPattern = "^[0-9]+(\\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$";

function quantity(path: string, what: string): Schema {
  return string(`${what}, e.g. ${what.startsWith("CPU") ? '"250m" or "1"' : '"512Mi" or "1Gi"'}.`, 32, [
    rule(
      `self.matches(${re(quantityPattern)})`,
      `${path} must be a quantity such as ${what.startsWith("CPU") ? '"250m" or "1"' : '"512Mi" or "1Gi"'}`,
    ),
  ]);
}

/**
 * `spec.backup.resources`: the executor container's CPU and memory over the computed defaults
 * (memory = partSize × (concurrency + 2) + 256 MiB, request = limit). A request above its
 * limit is refused here rather than by the Pod admission of every Job.
 */
function executorResourcesSchema(path: string): Schema {
  const pair = (kind: "requests" | "limits"): Schema =>
    object(`Executor container ${kind}.`, {
      cpu: quantity(`${path}.${kind}.cpu`, `CPU ${kind === "requests" ? "request" : "limit"}`),
      memory: quantity(`${path}.${kind}.memory`, `Memory ${kind === "requests" ? "request" : "limit"}`),
    });
  return object(
    "CPU and memory of the executor container of backup and restore Jobs, over the computed defaults (memory partSize × (concurrency + 2) + 256 MiB as request and limit, CPU request 100m). A memory limit below what the upload needs gets the Job OOMKilled.",
    { requests: pair("requests"), limits: pair("limits") },
    {
      rules: [
        rule(
          "!(has(self.requests) && has(self.limits) && has(self.requests.memory) && has(self.limits.memory)) || quantity(self.requests.memory).compareTo(quantity(self.limits.memory)) <= 0",
          `${path}.requests.memory must not exceed ${path}.limits.memory`,
          { fieldPath: ".requests.memory" },
        ),
        rule(
          "!(has(self.requests) && has(self.limits) && has(self.requests.cpu) && has(self.limits.cpu)) || quantity(self.requests.cpu).compareTo(quantity(self.limits.cpu)) <= 0",
          `${path}.requests.cpu must not exceed ${path}.limits.cpu`,
          { fieldPath: ".requests.cpu" },
        ),
      ],
    },
  );
}

/** The provider as written, or its default. */
const providerOf = `(has(self.provider) ? self.provider : "s3")`;

// ── shared parts ────────────────────────────────────────────────────────────────────────────

/**
 * The rules of every URL a Job connects to (`target.endpoint`, `openbaoAddresses` entries):
 * its shape, then the host policy that keeps a Job from sending credentials or a snapshot to
 * the node's metadata service (`endpointHostProblem` in src/storage/target.ts checks the same
 * at run time, on the host the URL parser resolves).
 */
function endpointRules(path: string, shape: string): ValidationRule[] {
  return [
    rule(`self.matches(${re(endpointPattern)})`, shape),
    rule(
      `!self.matches(${re(linkLocalEndpointPattern)})`,
      `${path} must not point at a link-local or cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::/32, 100.100.100.200, metadata.google.internal): the Job would send its credentials there; use the address of the service itself`,
    ),
    rule(
      `!self.matches(${re(numericHostEndpointPattern)}) || self.matches(${re(canonicalIPv4EndpointPattern)})`,
      `${path} writes an IPv4 address in a non-canonical form (decimal, hex, octal or shortened such as 2852039166, 0xA9FEA9FE or 10.1): write it as four decimal numbers without leading zeros, e.g. http://10.0.0.7:9000`,
    ),
    rule(
      `!self.matches(${re(embeddedIPv4EndpointPattern)})`,
      `${path} must not be an IPv4-mapped IPv6 address such as [::ffff:10.0.0.7]: write the IPv4 address as four decimal numbers`,
    ),
  ];
}

/**
 * The Secrets the lifecycle operator creates for a cluster's unseal key and root token
 * (`<cluster>-unseal-key`, `<cluster>-root-token`): a backup or restore must never mount
 * them. `clusterName` is a CEL expression for the cluster's name; `refs` are the paths of
 * the Secret references below the node carrying the rule.
 */
function protectedSecretRules(clusterName: string, base: string, refs: string[]): ValidationRule[] {
  return refs.map((ref) => {
    // `has()` of a field below an absent parent is an error in CEL: test each level.
    const parts = ref.split(".");
    const levels = [`!has(${clusterName})`, ...parts.map((_, i) => `!has(self.${parts.slice(0, i + 1).join(".")})`)];
    return rule(
      `${levels.join(" || ")} || !(self.${ref}.name in [${clusterName} + "-unseal-key", ${clusterName} + "-root-token"])`,
      `${base}${ref}.name must not name the cluster's own unseal-key or root-token Secret (<cluster>-unseal-key, <cluster>-root-token): reference a Secret made for backups (a token limited to the backup or restore policy; the CA alone for TLS)`,
      { fieldPath: `.${ref}.name`, reason: "FieldValueForbidden" },
    );
  });
}

function secretName(path: string): Schema {
  return string("Name of a Secret in the same namespace.", limits.maxObjectNameLength, [
    rule(
      `self.matches(${re(dnsSubdomainPattern)})`,
      `${path} must be the name of a Secret in this namespace (lower-case letters, digits, "-" and "."); Secrets in other namespaces cannot be referenced`,
    ),
  ]);
}

function secretRef(path: string, description: string): Schema {
  return object(description, { name: secretName(`${path}.name`) }, { required: ["name"] });
}

function tokenSecretRef(path: string): Schema {
  return object(
    "Static OpenBao token: a Secret in the same namespace and the key holding the token.",
    {
      name: secretName(`${path}.name`),
      key: string('Key of the token in the Secret; default "token".', limits.maxObjectNameLength, [
        rule(
          `self.matches(${re(secretKeyPattern)})`,
          `${path}.key must be a Secret data key (letters, digits, "-", "_" and "."), e.g. "token"`,
        ),
      ]),
    },
    { required: ["name"] },
  );
}

function imageSchema(path: string, description: string): Schema {
  return string(
    description,
    1024,
    [
      rule(
        `!self.matches(${re(whitespacePattern)})`,
        `${path} must be a container image reference without spaces, e.g. "ghcr.io/openbao/openbao-backup:0.1.0"`,
      ),
    ],
    { minLength: 1 },
  );
}

/** `jwtAuthRole`, `jwtAuthPath`, `tokenSecretRef` and the rules tying them together. */
function authProperties(path: string): Record<string, Schema> {
  return {
    jwtAuthRole: string(
      "OpenBao JWT auth role; the Job logs in with a projected ServiceAccount token (audience from the operator's OPENBAO_JWT_AUDIENCE, default openbao-internal).",
      256,
      [
        rule(
          `self.matches(${re(openbaoRoleNamePattern)})`,
          `${path}.jwtAuthRole must be an OpenBao role name (letters, digits, "_", "-", "." and "@"), e.g. "backup"`,
        ),
      ],
    ),
    jwtAuthPath: string('Mount path of the JWT auth method, without "auth/"; default "jwt".', 256, [
      rule(
        `!self.startsWith("auth/")`,
        `${path}.jwtAuthPath is the mount path without the "auth/" prefix: write "jwt", not "auth/jwt"`,
      ),
      rule(
        `self.matches(${re(openbaoMountPathPattern)})`,
        `${path}.jwtAuthPath must be a mount path like "jwt" or "k8s/jwt" (no leading or trailing "/")`,
      ),
    ]),
    tokenSecretRef: tokenSecretRef(`${path}.tokenSecretRef`),
  };
}

function authRules(path: string): ValidationRule[] {
  return [
    rule(
      "has(self.jwtAuthRole) || has(self.tokenSecretRef)",
      `${path} needs OpenBao authentication: set ${path}.jwtAuthRole (JWT auth, recommended) or ${path}.tokenSecretRef (a Secret holding a token)`,
      { fieldPath: ".jwtAuthRole", reason: "FieldValueRequired" },
    ),
    rule(
      "!(has(self.jwtAuthRole) && has(self.tokenSecretRef))",
      `${path}.jwtAuthRole and ${path}.tokenSecretRef are alternatives: set only one of them`,
      { fieldPath: ".tokenSecretRef", reason: "FieldValueForbidden" },
    ),
    rule(
      "!has(self.jwtAuthPath) || has(self.jwtAuthRole)",
      `${path}.jwtAuthPath applies to JWT auth only: set ${path}.jwtAuthRole too, or remove ${path}.jwtAuthPath`,
      { fieldPath: ".jwtAuthPath", reason: "FieldValueForbidden" },
    ),
  ];
}

/**
 * `target.encryption`: one object whose fields belong to one provider each (S3 `type` and
 * `kmsKeyId`, GCS `kmsKeyName`, Azure `encryptionScope`); which ones a target may use is
 * decided by `encryptionProviderRules` on the target, where the provider is known.
 */
function encryptionSchema(path: string): Schema {
  const at = `${path}.encryption`;
  return object(
    "Server-side encryption of every object a backup writes (the snapshot and its manifest), checked on the stored object right after the upload: a store that reports anything else fails the backup (reason EncryptionMismatch) and the objects are removed. One provider's fields: s3 type (+ kmsKeyId), gcs kmsKeyName, azure encryptionScope. Reading needs no setting: restores, list and verify work unchanged.",
    {
      type: {
        type: "string",
        description:
          "S3 only: AES256 (SSE-S3, keys managed by the store) or aws:kms (SSE-KMS: the store's KMS, with kmsKeyId or its default key).",
        enum: ["AES256", "aws:kms"],
      },
      kmsKeyId: string(
        'S3 with type aws:kms only: the KMS key (key id, key ARN, "alias/<name>" or alias ARN; on MinIO the name of a key of its KMS). Absent: the store\'s default KMS key. The backup identity needs kms:GenerateDataKey on it, restores kms:Decrypt.',
        2048,
        [
          rule(
            `self.matches(${re(s3KmsKeyIdPattern)})`,
            `${at}.kmsKeyId must be a KMS key id, key ARN or alias such as "alias/openbao-backups" (no spaces)`,
          ),
        ],
      ),
      kmsKeyName: string(
        "GCS only: the Cloud KMS key (CMEK) objects are encrypted with, projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>. The bucket's Cloud Storage service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it.",
        1024,
        [
          rule(
            '!self.contains("/cryptoKeyVersions/")',
            `${at}.kmsKeyName names a key version: give the key itself (…/cryptoKeys/<key>); GCS encrypts with its primary version`,
          ),
          rule(
            `self.contains("/cryptoKeyVersions/") || self.matches(${re(gcsKmsKeyNamePattern)})`,
            `${at}.kmsKeyName must be a Cloud KMS key: projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>`,
          ),
        ],
      ),
      encryptionScope: string(
        "Azure only: the storage account's encryption scope blocks and blobs are written with (create it first, e.g. az storage account encryption-scope create).",
        63,
        [
          rule(
            `self.matches(${re(azureEncryptionScopePattern)}) && size(self) >= 3`,
            `${at}.encryptionScope must be 3 to 63 lower-case letters, digits and single hyphens`,
          ),
        ],
      ),
    },
    {
      rules: [
        rule(
          '!has(self.kmsKeyId) || (has(self.type) && self.type == "aws:kms")',
          `${at}.kmsKeyId applies to type aws:kms only: set ${at}.type to aws:kms, or remove kmsKeyId for AES256`,
          { fieldPath: ".kmsKeyId", reason: "FieldValueForbidden" },
        ),
      ],
    },
  );
}

/** Each `encryption` field belongs to one provider, and each provider needs its own. */
function encryptionProviderRules(path: string): ValidationRule[] {
  const at = `${path}.encryption`;
  const others = {
    s3: `for gcs set ${at}.kmsKeyName, for azure ${at}.encryptionScope`,
    gcs: `for s3 set ${at}.type (and kmsKeyId), for azure ${at}.encryptionScope`,
    azure: `for s3 set ${at}.type (and kmsKeyId), for gcs ${at}.kmsKeyName`,
  };
  const belongs = (field: string, owner: "s3" | "gcs" | "azure", what: string): ValidationRule =>
    rule(
      `!has(self.encryption) || !has(self.encryption.${field}) || ${providerOf} == "${owner}"`,
      `${at}.${field} (${what}) applies to provider ${owner} only: remove it; ${others[owner]}`,
      { fieldPath: `.encryption.${field}`, reason: "FieldValueForbidden" },
    );
  const needs = (field: string, owner: "s3" | "gcs" | "azure", what: string): ValidationRule =>
    rule(
      `!has(self.encryption) || ${providerOf} != "${owner}" || has(self.encryption.${field})`,
      `${at}.${field} is required for provider ${owner}: ${what}`,
      { fieldPath: `.encryption.${field}`, reason: "FieldValueRequired" },
    );
  return [
    belongs("type", "s3", "SSE-S3 / SSE-KMS"),
    belongs("kmsKeyId", "s3", "an SSE-KMS key"),
    belongs("kmsKeyName", "gcs", "a Cloud KMS key"),
    belongs("encryptionScope", "azure", "an Azure encryption scope"),
    needs("type", "s3", "AES256 (SSE-S3) or aws:kms (SSE-KMS)"),
    needs(
      "kmsKeyName",
      "gcs",
      "the Cloud KMS key, projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>",
    ),
    needs("encryptionScope", "azure", "the name of the storage account's encryption scope"),
  ];
}

/**
 * `spec.backup.additionalTargets`: targets with a unique name (a list-map keyed by name, so the
 * API server refuses duplicates); `primary` names `target` itself.
 */
function additionalTargetsSchema(path: string): Schema {
  const item = targetSchema(`${path}[]`);
  const itemRules = (item["x-kubernetes-validations"] as ValidationRule[] | undefined) ?? [];
  return {
    type: "array",
    description:
      "More destinations written from the same snapshot stream (one read of OpenBao, e.g. a copy in another provider or region): each has its own credentials, checks, manifest (identical SHA-256) and retention. At most 4. Memory grows with each: partSize × (concurrency + 2) per destination.",
    maxItems: 4,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
    items: {
      ...item,
      required: [...((item.required as string[] | undefined) ?? []), "name"],
      properties: {
        name: string(
          'The destination\'s name in status, events, metrics and messages: at most 40 lower-case letters, digits and "-", not "primary" (the name of target).',
          maxDestinationNameLength,
          [
            rule(
              `self.matches(${re(dnsLabelPattern)})`,
              `${path}[].name must be at most 40 lower-case letters, digits and "-", e.g. "offsite"`,
            ),
            rule('self != "primary"', `${path}[].name "primary" is the name of target: choose another`),
          ],
        ),
        ...(item.properties as Record<string, Schema>),
      },
      "x-kubernetes-validations": itemRules,
    },
  };
}

/** `spec.backup.target` and `OpenBaoRestore.spec.source.target`. */
export function targetSchema(path: string): Schema {
  return object(
    "Object storage the snapshots are written to (or read from).",
    {
      provider: {
        type: "string",
        description: "s3 (default, also S3-compatible stores), gcs or azure.",
        enum: ["s3", "gcs", "azure"],
      },
      endpoint: string(
        "Custom endpoint URL: S3-compatible stores, private endpoints, emulators (fake-gcs-server, Azurite).",
        2048,
        endpointRules(
          `${path}.endpoint`,
          `${path}.endpoint must be an http:// or https:// URL without credentials, query or fragment, e.g. "https://s3.eu-west-1.amazonaws.com" or "http://minio.storage:9000"`,
        ),
      ),
      bucket: string("Bucket (S3, GCS) or container (Azure, unless azure.container is set).", 222, [
        rule(
          `self.matches(${re(bucketPattern)})`,
          `${path}.bucket must be a bucket or container name (letters, digits, ".", "_", "-") without "/" or spaces; put folders in ${path}.pathPrefix`,
        ),
      ]),
      pathPrefix: string(
        'Folder inside the bucket; keys are <pathPrefix>/<namespace>/<cluster>/<timestamp>-<id>.snap. Relative: no leading "/", no "." or ".." segments.',
        512,
        [
          rule(
            '!self.startsWith("/")',
            `${path}.pathPrefix must be relative to the bucket: remove the leading "/" (write "backups", not "/backups")`,
          ),
          rule('!self.contains("\\\\")', `${path}.pathPrefix must not contain backslashes: separate folders with "/"`),
          rule(
            `!self.matches(${re(controlCharacterPattern)})`,
            `${path}.pathPrefix must not contain control characters`,
          ),
          rule(
            `!self.matches(${re(emptySegmentPattern)})`,
            `${path}.pathPrefix must not contain empty segments: replace "//" with "/"`,
          ),
          rule(
            `!self.matches(${re(dotSegmentPattern)})`,
            `${path}.pathPrefix must not contain "." or ".." segments: name the folder directly`,
          ),
          rule("size(bytes(self)) <= 512", `${path}.pathPrefix must be at most 512 bytes in UTF-8`),
        ],
      ),
      region: string('Region (S3); default "us-east-1". Any name an S3-compatible store expects.', 64, [
        rule(
          `self.matches(${re(regionPattern)})`,
          `${path}.region must be a region name such as "eu-west-1" (letters, digits, "-", "_", ".")`,
        ),
      ]),
      usePathStyle: boolean("S3 path-style addressing (MinIO and most S3-compatible stores); default false."),
      roleArn: string(
        "S3 only: IAM role for web identity (IRSA); the Job gets a projected token with audience sts.amazonaws.com.",
        2048,
        [
          rule(
            `self.matches(${re(roleArnPattern)})`,
            `${path}.roleArn must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>`,
          ),
        ],
      ),
      credentialsSecretRef: secretRef(
        `${path}.credentialsSecretRef`,
        "Secret in the same namespace with static credentials: S3 accessKeyId, secretAccessKey (opt. sessionToken, region); GCS credentials.json; Azure accountKey or connectionString; opt. caCert for all. Absent: ambient identity (IRSA / default chain, ADC / Workload Identity, managed / workload identity).",
      ),
      gcs: object("GCS only.", {
        project: string("GCP project ID; optional with ADC or when the credentials name it.", 100, [
          rule(
            `self.matches(${re(gcsProjectPattern)})`,
            `${path}.gcs.project must be a GCP project ID such as "my-project-123"`,
          ),
        ]),
      }),
      azure: object(
        "Azure Blob only.",
        {
          storageAccount: string("Storage account name.", 24, [
            rule(
              `self.matches(${re(azureStorageAccountPattern)})`,
              `${path}.azure.storageAccount must be 3 to 24 lower-case letters and digits`,
            ),
          ]),
          container: string("Container; default: bucket.", 63, [
            rule(
              `self.matches(${re(azureContainerPattern)}) && size(self) >= 3`,
              `${path}.azure.container must be 3 to 63 lower-case letters, digits and single hyphens`,
            ),
          ]),
        },
        { required: ["storageAccount"] },
      ),
      encryption: encryptionSchema(path),
      objectLock: object(
        "S3 only: Object Lock on every snapshot and manifest a backup writes, retained until its creation + retention.maxAge (required) + grace, so that retention deletes it once due and nobody can sooner; checked on the stored object after the upload (reason ObjectLockMismatch). The bucket must have Object Lock enabled. Retention keeps what a lock holds and reports it (locked until …), never a failure. GCS and Azure: use a bucket retention policy or a container immutability policy instead.",
        {
          mode: {
            type: "string",
            description:
              "GOVERNANCE (an identity with s3:BypassGovernanceRetention can still delete) or COMPLIANCE (nobody can, not even the account root, until it ends).",
            enum: ["GOVERNANCE", "COMPLIANCE"],
          },
          grace: string('How much longer than retention.maxAge each object stays locked; default "24h".', 64, [
            rule(
              `self.matches(${re(durationPattern)})`,
              `${path}.objectLock.grace must be a duration such as "24h", "1d" or "0s" (units ns, us, ms, s, m, h, d)`,
            ),
          ]),
          preUpgradeLegalHold: boolean(
            "Also put a legal hold on each pre-upgrade snapshot and its manifest: a rollback point stays until a person lifts the hold (s3:PutObjectLegalHold).",
          ),
        },
        { required: ["mode"] },
      ),
      partSize: integer(
        "Bytes per upload part; default 10485760 (10 MiB), at least 5242880 (5 MiB); raised automatically when a snapshot would need more parts than the provider allows.",
        { format: "int64", minimum: limits.minPartSize, maximum: limits.maxPartSize },
      ),
      concurrency: integer(
        "Parts uploaded at once, 1 to 16; default 3. Memory is about partSize × (concurrency + 1).",
        {
          format: "int32",
          minimum: limits.minConcurrency,
          maximum: limits.maxConcurrency,
        },
      ),
      insecureSkipVerify: boolean("Skip TLS verification of the storage endpoint only; default false."),
    },
    {
      rules: [
        rule(
          `has(self.bucket) || (${providerOf} == "azure" && has(self.azure) && has(self.azure.container))`,
          `${path}.bucket is required: the bucket (or, for Azure, the container unless ${path}.azure.container is set)`,
          { fieldPath: ".bucket", reason: "FieldValueRequired" },
        ),
        rule(
          `${providerOf} != "azure" || has(self.azure)`,
          `${path}.azure.storageAccount is required for provider azure`,
          { fieldPath: ".azure", reason: "FieldValueRequired" },
        ),
        rule(
          `!has(self.roleArn) || ${providerOf} == "s3"`,
          `${path}.roleArn (S3 web identity) applies to provider s3 only: remove it, or use workload identity for gcs/azure`,
          { fieldPath: ".roleArn", reason: "FieldValueForbidden" },
        ),
        rule(`!has(self.gcs) || ${providerOf} == "gcs"`, `${path}.gcs applies to provider gcs only: remove it`, {
          fieldPath: ".gcs",
          reason: "FieldValueForbidden",
        }),
        rule(
          `!has(self.azure) || ${providerOf} == "azure"`,
          `${path}.azure applies to provider azure only: remove it`,
          {
            fieldPath: ".azure",
            reason: "FieldValueForbidden",
          },
        ),
        ...encryptionProviderRules(path),
        rule(
          `!has(self.objectLock) || ${providerOf} == "s3"`,
          `${path}.objectLock applies to provider s3 only: remove it; on gcs use a bucket retention policy, on azure a container immutability policy`,
          { fieldPath: ".objectLock", reason: "FieldValueForbidden" },
        ),
        rule(
          `!has(self.partSize) || ${providerOf} != "azure" || self.partSize <= ${limits.maxAzurePartSize}`,
          `${path}.partSize must be at most ${limits.maxAzurePartSize} bytes (4000 MiB, Azure's largest block)`,
          { fieldPath: ".partSize" },
        ),
      ],
    },
  );
}

function stringMap(
  description: string,
  path: string,
  kind: "label" | "annotation",
  rules: ValidationRule[] = [],
): Schema {
  const keyRule = rule(
    `self.all(k, size(k) <= 317 && k.matches(${re(qualifiedNamePattern)}))`,
    `${path} keys must be ${kind} keys: an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_" and "."`,
  );
  const valueRule = rule(
    `self.all(k, self[k].matches(${re(labelValuePattern)}))`,
    `${path} values must be label values: at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit`,
  );
  return {
    type: "object",
    description,
    maxProperties: 64,
    additionalProperties: { type: "string", maxLength: kind === "label" ? 63 : 4096 },
    "x-kubernetes-validations": [keyRule, ...(kind === "label" ? [valueRule] : []), ...rules],
  };
}

function conditionsSchema(): Schema {
  return {
    type: "array",
    description: "Conditions of this resource (metav1.Condition), one per type.",
    maxItems: 64,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
    items: object(
      "A condition.",
      {
        type: string("Condition type.", 316, [], { pattern: conditionTypePattern }),
        status: { type: "string", enum: ["True", "False", "Unknown"] },
        reason: string("CamelCase reason.", 1024, [], { minLength: 1, pattern: conditionReasonPattern }),
        message: string("Human-readable detail.", 32768),
        lastTransitionTime: time("When status last changed."),
        observedGeneration: integer("metadata.generation the condition was set for.", { format: "int64", minimum: 0 }),
      },
      { required: ["type", "status", "lastTransitionTime", "reason", "message"] },
    ),
  };
}

// ── OpenBaoCluster ──────────────────────────────────────────────────────────────────────────

function backupSchema(): Schema {
  const path = "spec.backup";
  const reserved = reservedLabelPrefixes.map((prefix) => `k.startsWith("${prefix}")`).join(" || ");
  return object(
    "Scheduled Raft snapshots of this cluster to object storage, each run as a Kubernetes Job.",
    {
      schedule: string(
        'Cron schedule: five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *", or @hourly, @daily, @weekly, @monthly, @yearly.',
        128,
        [
          rule(
            `self.matches(${re(cronSchedulePattern)})`,
            `${path}.schedule must be five cron fields (minute hour day-of-month month day-of-week, e.g. "0 3 * * *" or "*/15 * * * *") or one of @hourly, @daily, @weekly, @monthly, @yearly`,
          ),
        ],
      ),
      timeZone: string(
        'IANA time zone of the schedule, e.g. "Europe/Berlin"; default "UTC". Whether the zone exists is checked by the operator (BackupHealthy condition), not at admission.',
        64,
        [
          rule(
            `self.matches(${re(timeZonePattern)}) && self != "Local"`,
            `${path}.timeZone must be an IANA time zone name such as "UTC", "Europe/Berlin" or "America/New_York"`,
          ),
        ],
      ),
      suspend: boolean(
        "Stop scheduled backups; manual triggers still run. Windows missed while suspended are not caught up.",
      ),
      image: imageSchema(`${path}.image`, "Executor image; default: the operator's own image."),
      executorImage: imageSchema(`${path}.executorImage`, "Former name of image (as in the original documentation)."),
      ...authProperties(path),
      openbaoAddresses: {
        type: "array",
        description:
          "OpenBao member API URLs; default from the StatefulSet when readiness comes from it (<scheme>://<sts>-<i>.<serviceName>.<namespace>.svc:<port>), else https://<cluster>-<i>.<cluster>.<namespace>.svc:8200 for each replica.",
        maxItems: limits.maxReplicas,
        "x-kubernetes-list-type": "set",
        items: string(
          "An OpenBao member's API URL.",
          2048,
          endpointRules(
            `${path}.openbaoAddresses`,
            `${path}.openbaoAddresses entries must be http:// or https:// URLs such as "https://bao-0.bao.vault.svc:8200"`,
          ),
        ),
      },
      statefulSetName: string(
        "The StatefulSet running this OpenBao when no lifecycle operator manages it (e.g. the official Helm chart's <release>); default: this cluster's name. Readiness and member addresses then come from it (see status.backup.readiness).",
        63,
        [
          rule(
            `self.matches(${re(dnsLabelPattern)})`,
            `${path}.statefulSetName must be the name of a StatefulSet in this namespace (lower-case letters, digits and "-", at most 63 characters), e.g. "openbao"`,
          ),
        ],
      ),
      tlsSecretRef: secretRef(
        `${path}.tlsSecretRef`,
        "Secret in the same namespace holding ca.crt for OpenBao's TLS (a cert-manager Secret works); default <cluster>-tls-ca; not needed when every member is http://.",
      ),
      target: targetSchema(`${path}.target`),
      additionalTargets: additionalTargetsSchema(`${path}.additionalTargets`),
      successPolicy: {
        type: "string",
        description:
          "With additionalTargets, what makes a backup a success: All (default: every destination holds a verified copy), AtLeastOne, or Primary (target decides; the others are reported). Whatever the policy, a failed destination is in status.backup.destinations, an Event (BackupDestinationFailed) and the openbao_backup_destination_* metrics.",
        enum: ["All", "AtLeastOne", "Primary"],
      },
      retention: object(
        "Retention applied by each successful backup Job: the newest snapshot is always kept; pre-upgrade snapshots and foreign objects are never deleted.",
        {
          maxCount: integer("Keep at most this many snapshots.", { format: "int32", minimum: 1 }),
          maxAge: string('Delete snapshots older than this duration, e.g. "168h", "7d", "90m".', 64, [
            rule(
              `self.matches(${re(durationPattern)})`,
              `${path}.retention.maxAge must be a duration such as "168h", "7d", "90m" or "1h30m" (units ns, us, ms, s, m, h, d)`,
            ),
            rule(
              `!self.matches(${re(zeroDurationPattern)})`,
              `${path}.retention.maxAge must be greater than zero; remove it to keep snapshots regardless of age`,
            ),
          ]),
        },
        {
          rules: [
            rule(
              "has(self.maxCount) || has(self.maxAge)",
              `${path}.retention needs maxCount or maxAge (or both); remove retention to keep every snapshot`,
              { reason: "FieldValueRequired" },
            ),
          ],
        },
      ),
      activeDeadlineSeconds: integer("Deadline of one backup Job in seconds; default 3600.", {
        format: "int64",
        minimum: 1,
      }),
      resources: executorResourcesSchema(`${path}.resources`),
      serviceAccount: object("The ServiceAccount generated for backup Jobs.", {
        annotations: stringMap(
          "Annotations for workload-identity webhooks: eks.amazonaws.com/role-arn, iam.gke.io/gcp-service-account, azure.workload.identity/client-id.",
          `${path}.serviceAccount.annotations`,
          "annotation",
        ),
      }),
      podLabels: stringMap(
        'Labels on the backup Job\'s Pod, e.g. azure.workload.identity/use: "true".',
        `${path}.podLabels`,
        "label",
        [
          rule(
            `!self.exists(k, ${reserved})`,
            `${path}.podLabels must not set labels under ${reservedLabelPrefixes.join(" or ")}: the operator and the Job controller own them`,
          ),
        ],
      ),
      podAnnotations: stringMap("Annotations on the backup Job's Pod.", `${path}.podAnnotations`, "annotation"),
      preUpgradeSnapshot: boolean(
        "The same switch as spec.upgrade.preUpgradeSnapshot (the name in the BackupManager's configuration table); set either, or both to the same value.",
      ),
      drill: drillSchema(`${path}.drill`),
    },
    {
      required: ["schedule", "target"],
      rules: [
        ...authRules(path),
        rule(
          "!has(self.successPolicy) || has(self.additionalTargets)",
          `${path}.successPolicy applies with ${path}.additionalTargets only: remove it, or add destinations`,
          { fieldPath: ".successPolicy", reason: "FieldValueForbidden" },
        ),
        rule(
          "!has(self.additionalTargets) || self.additionalTargets.all(t, !has(t.objectLock)) || (has(self.retention) && has(self.retention.maxAge))",
          `${path}.additionalTargets[].objectLock needs ${path}.retention.maxAge: each object stays locked for maxAge + grace; set maxAge, or remove objectLock`,
          { fieldPath: ".retention", reason: "FieldValueRequired" },
        ),
        rule(
          "!has(self.target.objectLock) || (has(self.retention) && has(self.retention.maxAge))",
          `${path}.target.objectLock needs ${path}.retention.maxAge: each object stays locked for maxAge + grace, so that retention can delete it once it is due; set maxAge, or remove objectLock`,
          { fieldPath: ".retention", reason: "FieldValueRequired" },
        ),
        rule(
          "!(has(self.image) && has(self.executorImage))",
          `${path}.executorImage is the former name of ${path}.image: set only one of them`,
          { fieldPath: ".executorImage", reason: "FieldValueForbidden" },
        ),
      ],
    },
  );
}

/** `spec.backup.drill`: restore drills (src/drill/manager/). */
function drillSchema(path: string): Schema {
  return object(
    "Restore drills: on this schedule a Job restores a stored backup into a throwaway OpenBao inside its own Pod (never the live cluster) and proves it loads (RestoreVerified, reason DrillLoaded) or, with key material, that its data reads back (DrillVerified). See docs/drills.md.",
    {
      schedule: string('Cron schedule of drills, like spec.backup.schedule, e.g. "0 5 * * 0".', 128, [
        rule(
          `self.matches(${re(cronSchedulePattern)})`,
          `${path}.schedule must be five cron fields (minute hour day-of-month month day-of-week, e.g. "0 5 * * 0") or one of @hourly, @daily, @weekly, @monthly, @yearly`,
        ),
      ]),
      timeZone: string("IANA time zone of the drill schedule; default spec.backup.timeZone, else UTC.", 64, [
        rule(
          `self.matches(${re(timeZonePattern)}) && self != "Local"`,
          `${path}.timeZone must be an IANA time zone name such as "UTC" or "Europe/Berlin"`,
        ),
      ]),
      suspend: boolean("Stop scheduled drills; the openbao.org/trigger-drill annotation still runs one."),
      key: string(
        'The backup to drill: an object key, or "latest" (default): the newest verified backup when the drill runs.',
        1024,
        [
          rule(
            `!self.matches(${re(controlCharacterPattern)})`,
            `${path}.key must be an object key such as "bao/2025/03/04/bao-20250304-050607-1a2b3c4d.snap", or "latest"`,
          ),
        ],
        { minLength: 1 },
      ),
      image: imageSchema(
        `${path}.image`,
        "The throwaway OpenBao's image; default the operator's drill image repository (quay.io/openbao/openbao) tagged with the cluster's version (status.currentVersion, else spec.version).",
      ),
      unsealKeysSecretRef: secretRef(
        `${path}.unsealKeysSecretRef`,
        "Opt-in: a Secret holding the cluster's Shamir unseal keys, one key per data key (as bao operator init prints them). Mounted into the drill's executor only; the drill then unseals the restored copy and reads its data (outcome verified). Anyone who can read this Secret can open every backup: see docs/drills.md.",
      ),
      sealConfigSecretRef: secretRef(
        `${path}.sealConfigSecretRef`,
        'Opt-in: the cluster\'s auto-unseal for the throwaway: a Secret whose key seal.hcl holds the seal stanza (e.g. seal "transit" { … }); its other keys are mounted beside it at /etc/bao-drill/seal for the stanza to name (a CA file). Not together with unsealKeysSecretRef.',
      ),
      canaryPath: string(
        'KV v2 "<mount>/<path>" (e.g. "secret/openbao-backup/canary"): every backup writes a fresh random canary there just before its snapshot, and every drill must read exactly that canary back from the restored copy. The backup policy needs create/update on it, read for the drill.',
        256,
        [
          rule(
            `self.matches(${re(canaryLocationPattern)}) && !self.matches(${re(dotSegmentPattern)})`,
            `${path}.canaryPath must be "<kv-v2 mount>/<path>" such as "secret/openbao-backup/canary" (letters, digits, "_", "-", "." and "/"; no "." or ".." segments)`,
          ),
        ],
      ),
      activeDeadlineSeconds: integer("Deadline of one drill Job in seconds; default 3600.", {
        format: "int64",
        minimum: 1,
      }),
      openbaoResources: executorResourcesSchema(`${path}.openbaoResources`),
    },
    {
      required: ["schedule"],
      rules: [
        rule(
          "!(has(self.unsealKeysSecretRef) && has(self.sealConfigSecretRef))",
          `${path}: unsealKeysSecretRef opens a Shamir-sealed copy, sealConfigSecretRef gives the throwaway an auto-unseal: a cluster has one or the other, set only one`,
          { fieldPath: ".sealConfigSecretRef", reason: "FieldValueForbidden" },
        ),
      ],
    },
  );
}

function clusterSpecSchema(): Schema {
  return object(
    "OpenBaoCluster spec. Fields other than those below belong to the lifecycle operator and are preserved.",
    {
      replicas: integer("Number of OpenBao members.", {
        format: "int32",
        minimum: limits.minReplicas,
        maximum: limits.maxReplicas,
      }),
      version: string("Desired OpenBao version.", 128, [
        rule(
          `self.matches(${re(versionPattern)})`,
          'spec.version must be a semantic version such as "2.4.1" (optionally with a leading "v")',
        ),
      ]),
      backup: backupSchema(),
      upgrade: object(
        "Upgrade settings; fields other than preUpgradeSnapshot belong to the lifecycle operator.",
        {
          preUpgradeSnapshot: boolean(
            "Take one snapshot before upgrading to a new spec.version; the upgrade waits for PreUpgradeSnapshotReady. Also accepted as spec.backup.preUpgradeSnapshot.",
          ),
        },
        { extra: { "x-kubernetes-preserve-unknown-fields": true } },
      ),
    },
    {
      extra: { "x-kubernetes-preserve-unknown-fields": true },
      rules: [
        rule(
          "!(has(self.upgrade) && has(self.upgrade.preUpgradeSnapshot) && self.upgrade.preUpgradeSnapshot) || has(self.backup)",
          "spec.upgrade.preUpgradeSnapshot needs spec.backup (target and authentication) to take the snapshot: configure spec.backup or set preUpgradeSnapshot to false",
          { fieldPath: ".upgrade.preUpgradeSnapshot", reason: "FieldValueRequired" },
        ),
        rule(
          "!(has(self.upgrade) && has(self.upgrade.preUpgradeSnapshot) && has(self.backup) && has(self.backup.preUpgradeSnapshot)) || self.upgrade.preUpgradeSnapshot == self.backup.preUpgradeSnapshot",
          "spec.upgrade.preUpgradeSnapshot and spec.backup.preUpgradeSnapshot are two names of one switch and must not differ: set only one of them (or both to the same value)",
          { fieldPath: ".backup.preUpgradeSnapshot", reason: "FieldValueInvalid" },
        ),
      ],
    },
  );
}

function backupStatusSchema(): Schema {
  return object("Backup state written by the operator.", {
    readiness: object(
      "Where readiness comes from: LifecycleOperator (status.phase and status.initialized, written by a lifecycle operator) or StatefulSet (no lifecycle operator: the StatefulSet's Pods, and OpenBao's own answers when a Job runs).",
      {
        source: { type: "string", enum: ["LifecycleOperator", "StatefulSet"] },
        statefulSet: string("The StatefulSet read when source is StatefulSet.", 63),
      },
      { required: ["source"] },
    ),
    nextScheduledBackup: time("Next cron window."),
    lastAttemptTime: time("When the last backup Job was created."),
    lastAttemptScheduledTime: time("The cron window of the last scheduled attempt (at most one attempt per window)."),
    lastBackupTime: time("When the last successful backup completed."),
    lastBackupName: string("Object key of the last successful snapshot.", 1024),
    lastBackupSize: integer("Bytes of the last successful snapshot.", { format: "int64", minimum: 0 }),
    lastBackupDuration: string('Duration of the last successful backup, e.g. "1m12.5s".', 64),
    lastBackupSHA256: string("SHA-256 of the last successful snapshot.", 64, [], { pattern: sha256Pattern }),
    lastBackupRaftIndex: integer("Raft index of the last successful snapshot.", { format: "int64", minimum: 0 }),
    consecutiveFailures: integer("Failed Jobs since the last success (each Job counted once).", {
      format: "int32",
      minimum: 0,
    }),
    lastFailureReason: string("Short code of the last failure.", 64, [], { pattern: reasonCodePattern }),
    lastFailureMessage: string("Detail of the last failure (never contains a secret).", 4096),
    lastFailureTime: time("When the last failure was recorded."),
    lastRetentionDeleted: integer("Snapshots deleted by retention in the last successful run.", {
      format: "int32",
      minimum: 0,
    }),
    observedSchedule: object(
      "The schedule last observed, and since when: windows before it are never treated as missed.",
      {
        schedule: string("spec.backup.schedule as observed.", 128),
        timeZone: string("spec.backup.timeZone (defaulted) as observed.", 64),
        suspend: boolean("spec.backup.suspend as observed."),
        observedTime: time("When this schedule was first observed."),
      },
      { required: ["schedule", "timeZone", "suspend", "observedTime"] },
    ),
    currentJob: object(
      "The backup Job in flight. Set in the same write that takes the operation lock, cleared in the same write that records its result and releases the lock, so each Job is counted exactly once.",
      {
        name: string("The Job's name.", 63),
        type: { type: "string", enum: ["scheduled", "manual", "pre-upgrade"] },
        window: time("The cron window it runs for (scheduled Jobs)."),
        createdAt: time("When the operator decided to create it."),
        keyId: string("The 8 hex digits its snapshot key ends in (annotation openbao.org/key-id on the Job).", 8),
        confirm: object(
          "Set when the Job disappeared before its result was read: the Job looking for its backup in storage.",
          {
            job: string("The confirm Job's name.", 63),
            startedAt: time("When the loss was seen."),
            reason: {
              type: "string",
              enum: ["JobLost", "JobFailed"],
              description:
                "Recorded if storage holds no backup: JobLost (the Job disappeared) or JobFailed (it succeeded but left no readable result).",
            },
          },
          { required: ["job", "startedAt"] },
        ),
      },
      { required: ["name", "type", "createdAt"], extra: { nullable: true } },
    ),
    lastRecordedJob: string("The last Job whose result was recorded.", 63),
    destinations: {
      type: "array",
      description:
        "With spec.backup.additionalTargets: each destination's own record (primary first), from each backup Job's result.",
      maxItems: 5,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
      items: object(
        "One destination.",
        {
          name: string("primary, or the name in spec.backup.additionalTargets.", 40),
          location: string("s3://bucket, gcs://bucket or azure://account/container.", 512),
          lastBackupTime: time("When the last backup it holds verified was recorded."),
          lastBackupName: string("Its key of that backup.", 1024),
          consecutiveFailures: integer("Backup Jobs since its last verified copy that did not store one.", {
            format: "int32",
            minimum: 0,
          }),
          lastFailureReason: string("Short code of its last failure.", 64, [], { pattern: reasonCodePattern }),
          lastFailureMessage: string("Detail of its last failure (never contains a secret).", 1024),
          lastFailureTime: time("When its last failure was recorded."),
        },
        { required: ["name"] },
      ),
    },
    drill: object(
      "With spec.backup.drill: the drill schedule's state and the drill in flight (written by the drill manager only).",
      {
        nextScheduledDrill: time("Next drill window."),
        lastAttemptScheduledTime: time("The window of the last scheduled drill (at most one drill per window)."),
        observedSchedule: object(
          "The drill schedule last observed, and since when: windows before it are never treated as missed.",
          {
            schedule: string("spec.backup.drill.schedule as observed.", 128),
            timeZone: string("Its time zone (defaulted) as observed.", 64),
            suspend: boolean("spec.backup.drill.suspend as observed."),
            observedTime: time("When this schedule was first observed."),
          },
          { required: ["schedule", "timeZone", "suspend", "observedTime"] },
        ),
        currentJob: object(
          "The drill Job in flight: set before it is created, cleared when its result is recorded.",
          {
            name: string("The Job's name.", 63),
            type: { type: "string", enum: ["scheduled", "manual"] },
            window: time("The cron window it runs for (scheduled drills)."),
            createdAt: time("When the operator decided to create it."),
          },
          { required: ["name", "type", "createdAt"], extra: { nullable: true } },
        ),
        lastRecordedJob: string("The last drill Job whose result was recorded.", 63),
        lastSuccessTime: time("When the last drill that passed (loaded or verified) finished."),
        consecutiveFailures: integer("Failed drills since the last one that passed.", { format: "int32", minimum: 0 }),
      },
    ),
    lastDrill: object(
      "The last restore drill: what it drilled and what it proved (kept when drills are turned off).",
      {
        time: time("When the drill finished."),
        jobName: string("The drill Job.", 63),
        outcome: {
          type: "string",
          enum: ["verified", "loaded", "failed"],
          description:
            "verified: the restored copy was unsealed and its data read back (the canary, when one is set); loaded: OpenBao accepted the snapshot with the manifest's Raft index and seal type, without key material to open it; failed: see reason and message.",
        },
        key: string("The backup drilled (with latest, the key it resolved to).", 1024),
        raftIndex: integer("The snapshot's Raft index.", { format: "int64", minimum: 0 }),
        duration: string('How long the drill took, e.g. "1m12.5s".', 64),
        sealType: string("The restored seal type (shamir, transit, …).", 64),
        canaryVersion: integer("Verified with a canary: the canary version read back.", {
          format: "int64",
          minimum: 0,
        }),
        secretMounts: integer("Verified: secret engines the restored data mounts.", { format: "int32", minimum: 0 }),
        authMethods: integer("Verified: auth methods the restored data enables.", { format: "int32", minimum: 0 }),
        reason: string("Failed: a short code.", 64, [], { pattern: reasonCodePattern }),
        message: string("What was proved and what was not, or why it failed (never contains a secret).", 4096),
      },
      { required: ["time", "jobName", "outcome", "message"] },
    ),
    preUpgrade: object(
      "The pre-upgrade snapshot (rollback point) of the pending upgrade, or of the last one (endedAt).",
      {
        targetVersion: string("spec.version the snapshot protects an upgrade to.", 128),
        jobName: string("The current attempt's Job.", 63),
        key: string("Object key once the snapshot succeeded.", 1024),
        phase: { type: "string", enum: ["Pending", "Running", "Succeeded", "Failed"] },
        attempts: integer("Jobs created for this target version.", { format: "int32", minimum: 0 }),
        fromVersion: string("status.currentVersion when this upgrade was first seen.", 128),
        startedAt: time("When this upgrade was first seen; a new upgrade starts a new record."),
        startedGeneration: integer("metadata.generation when this upgrade was first seen.", {
          format: "int64",
          minimum: 0,
        }),
        nextAttemptTime: time("After a failed attempt: the next attempt is not before this time."),
        endedAt: time("When no upgrade was pending any more (completed or reverted): the record is history."),
      },
      { required: ["targetVersion", "phase", "attempts"] },
    ),
  });
}

function operationLockSchema(): Schema {
  return object(
    "The operation lock: at most one of backup, upgrade and restore runs at a time.",
    {
      operation: { type: "string", enum: ["Backup", "Upgrade", "Restore"] },
      holder: string(
        "openbaocluster/backup, openbaocluster/upgrade or openbaorestore/<name>.",
        15 + limits.maxObjectNameLength,
        [],
        { pattern: "^(openbaocluster/(backup|upgrade)|openbaorestore/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$" },
      ),
      message: string("What the holder is doing.", 1024),
      acquiredAt: time("When the lock was taken."),
      renewedAt: time("When the holder last confirmed it."),
    },
    {
      required: ["operation", "holder", "acquiredAt"],
      extra: { nullable: true },
      rules: [
        rule(
          '(self.operation == "Backup" && self.holder == "openbaocluster/backup") || (self.operation == "Upgrade" && self.holder == "openbaocluster/upgrade") || (self.operation == "Restore" && self.holder.startsWith("openbaorestore/"))',
          "status.operationLock.holder must match operation: Backup ↔ openbaocluster/backup, Upgrade ↔ openbaocluster/upgrade, Restore ↔ openbaorestore/<name>",
        ),
      ],
    },
  );
}

function clusterStatusSchema(): Schema {
  return object(
    "OpenBaoCluster status. phase, initialized, currentVersion and upgrade are written by the lifecycle operator; backup, operationLock and the backup conditions by this operator; other fields are preserved.",
    {
      phase: {
        type: "string",
        description: "Lifecycle phase.",
        enum: ["Initializing", "Running", "Upgrading", "BackingUp", "Failed"],
      },
      initialized: boolean("OpenBao is initialized."),
      currentVersion: string("The OpenBao version running now.", 128),
      upgrade: {
        type: "object",
        description: "Present (non-null) while an upgrade runs.",
        nullable: true,
        "x-kubernetes-preserve-unknown-fields": true,
      },
      backup: backupStatusSchema(),
      operationLock: operationLockSchema(),
      conditions: conditionsSchema(),
    },
    { extra: { "x-kubernetes-preserve-unknown-fields": true } },
  );
}

// ── OpenBaoRestore ──────────────────────────────────────────────────────────────────────────

function restoreSpecSchema(): Schema {
  const path = "spec";
  return object(
    "What to restore into which cluster. Immutable: create a new OpenBaoRestore to restore again.",
    {
      cluster: string("Name of the OpenBaoCluster in this namespace.", limits.maxObjectNameLength, [
        rule(
          `self.matches(${re(dnsSubdomainPattern)})`,
          'spec.cluster must be the name of an OpenBaoCluster in this namespace (lower-case letters, digits, "-" and ".")',
        ),
      ]),
      source: object(
        "The snapshot to restore.",
        {
          target: {
            ...targetSchema("spec.source.target"),
            description:
              "Where the snapshot is stored; default: the cluster's own spec.backup.target (with its credentials Secret).",
          },
          key: string(
            'Object key of the snapshot (.snap), as listed by bao-backup list; or "latest": the newest verified backup of the cluster in the target, resolved once by the restore Job and recorded in status.snapshotKey.',
            1024,
            [
              rule(
                '!self.startsWith("/") && !self.endsWith("/")',
                'spec.source.key must be an object key relative to the bucket, e.g. "backups/vault/prod/2025-03-04T05-06-07Z-0a1b2c3d.snap", without a leading or trailing "/"',
              ),
              rule(
                `!self.matches(${re(controlCharacterPattern)})`,
                "spec.source.key must not contain control characters",
              ),
              rule(
                '!self.endsWith(".json")',
                "spec.source.key names a manifest (.json): use the snapshot's key, which is the same without .json",
              ),
              rule("size(bytes(self)) <= 1024", "spec.source.key must be at most 1024 bytes in UTF-8"),
            ],
            { minLength: 1 },
          ),
        },
        { required: ["key"] },
      ),
      ...authProperties(path),
      image: imageSchema(`${path}.image`, "Executor image; default: the operator's own image."),
      force: boolean("Use snapshot-force and skip the cluster-state checks; default false."),
      overrideOperationLock: boolean(
        "Take the cluster's operation lock from its current holder; requires force. Recorded in the OperationLockOverride condition.",
      ),
    },
    {
      required: ["cluster", "source"],
      rules: [
        ...authRules(path),
        rule(
          "!(has(self.overrideOperationLock) && self.overrideOperationLock) || (has(self.force) && self.force)",
          "spec.overrideOperationLock requires spec.force: true (taking the lock from a running operation is only allowed for a forced restore)",
          { fieldPath: ".overrideOperationLock", reason: "FieldValueForbidden" },
        ),
        ...protectedSecretRules("self.cluster", "spec.", ["tokenSecretRef", "source.target.credentialsSecretRef"]),
        rule("self == oldSelf", "spec is immutable: delete this OpenBaoRestore and create a new one to restore again"),
      ],
    },
  );
}

function restoreStatusSchema(): Schema {
  return object(
    "Restore progress. Completed and Failed are terminal.",
    {
      phase: {
        type: "string",
        description: "Pending → Validating → Running → Completed | Failed.",
        enum: ["Pending", "Validating", "Running", "Completed", "Failed"],
      },
      startTime: time("When the restore started."),
      completionTime: time("When the restore finished."),
      snapshotKey: string("The object key restored.", 1024),
      snapshotSize: integer("Bytes restored.", { format: "int64", minimum: 0 }),
      message: string("Detail of the current phase (never contains a secret).", 32768),
      conditions: conditionsSchema(),
    },
    {
      rules: [
        rule(
          '!has(oldSelf.phase) || !(oldSelf.phase in ["Completed", "Failed"]) || (has(self.phase) && self.phase == oldSelf.phase)',
          "status.phase Completed and Failed are terminal and never change: create a new OpenBaoRestore to restore again",
          { fieldPath: ".phase" },
        ),
      ],
    },
  );
}

// ── the definitions ─────────────────────────────────────────────────────────────────────────

function rootSchema(
  description: string,
  spec: Schema,
  status: Schema,
  requireSpec: boolean,
  rules: ValidationRule[] = [],
): Schema {
  return {
    type: "object",
    description,
    ...(requireSpec ? { required: ["spec"] } : {}),
    properties: {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      metadata: { type: "object" },
      spec,
      status,
    },
    ...(rules.length > 0 ? { "x-kubernetes-validations": rules } : {}),
  };
}

const crdLabels = { "app.kubernetes.io/name": "openbao-backup", "app.kubernetes.io/part-of": "openbao-backup" };
const age: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

/** The OpenBaoCluster CRD as plain JSON (wire format). */
export function clusterCrdManifest(): CrdManifest {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${clusterNames.plural}.${group}`, labels: crdLabels },
    spec: {
      group,
      scope: "Namespaced",
      names: { ...clusterNames, shortNames: [...clusterNames.shortNames], categories: [...crdCategories] },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Phase", type: "string", jsonPath: ".status.phase" },
            {
              name: "Last Backup",
              type: "date",
              jsonPath: ".status.backup.lastBackupTime",
              description: "When the last successful backup completed.",
            },
            {
              name: "Failures",
              type: "integer",
              jsonPath: ".status.backup.consecutiveFailures",
              description: "Consecutive failed backup Jobs.",
            },
            {
              name: "Next Backup",
              type: "date",
              jsonPath: ".status.backup.nextScheduledBackup",
              priority: 1,
            },
            age,
          ],
          schema: {
            openAPIV3Schema: rootSchema(
              `An OpenBao cluster (${apiVersion}). This CRD declares the fields the backup operator reads and writes and preserves the lifecycle operator's.`,
              clusterSpecSchema(),
              clusterStatusSchema(),
              false,
              // At the root: only here can a rule read the cluster's own name.
              protectedSecretRules("self.metadata.name", "", [
                "spec.backup.tokenSecretRef",
                "spec.backup.tlsSecretRef",
                "spec.backup.target.credentialsSecretRef",
              ]),
            ),
          },
        },
      ],
    },
  };
}

/** The OpenBaoRestore CRD as plain JSON (wire format). */
export function restoreCrdManifest(): CrdManifest {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${restoreNames.plural}.${group}`, labels: crdLabels },
    spec: {
      group,
      scope: "Namespaced",
      names: { ...restoreNames, shortNames: [...restoreNames.shortNames], categories: [...crdCategories] },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Cluster", type: "string", jsonPath: ".spec.cluster" },
            { name: "Phase", type: "string", jsonPath: ".status.phase" },
            { name: "Key", type: "string", jsonPath: ".spec.source.key" },
            age,
          ],
          schema: {
            openAPIV3Schema: rootSchema(
              "A request to restore one snapshot into an OpenBaoCluster, streamed into OpenBao by a Job.",
              restoreSpecSchema(),
              restoreStatusSchema(),
              true,
            ),
          },
        },
      ],
    },
  };
}

function asJson(value: CrdManifest): JsonValue {
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

/** Typed for `@kubernetes/client-node` (its models spell `enum` as `_enum`, `x-kubernetes-*` as `x_kubernetes_*`). */
function typed(manifest: CrdManifest): V1CustomResourceDefinition {
  return loadYaml<V1CustomResourceDefinition>(JSON.stringify(manifest));
}

/** The OpenBaoCluster CRD, ready for `ApiextensionsV1Api.createCustomResourceDefinition`. */
export function clusterCrd(): V1CustomResourceDefinition {
  return typed(clusterCrdManifest());
}

/** The OpenBaoRestore CRD, ready for `ApiextensionsV1Api.createCustomResourceDefinition`. */
export function restoreCrd(): V1CustomResourceDefinition {
  return typed(restoreCrdManifest());
}

/** Both CRDs, typed. */
export function crds(): V1CustomResourceDefinition[] {
  return [clusterCrd(), restoreCrd()];
}

const header = [
  "# Generated by scripts/generate-crds.ts from src/api/schema.ts. Do not edit by hand:",
  "# change src/api/schema.ts and run `node scripts/generate-crds.ts`.",
].join("\n");

/** The files under `deploy/crds/`, path relative to the repository root → content. */
export function crdFiles(): { path: string; content: string }[] {
  return [clusterCrdManifest(), restoreCrdManifest()].map((manifest) => ({
    path: `deploy/crds/${group}_${manifest.spec.names.plural}.yaml`,
    content: `${header}\n${toYaml(asJson(manifest))}`,
  }));
}
