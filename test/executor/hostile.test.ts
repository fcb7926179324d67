/**
 * Issue 9, hostile and broken input on the executor side. An "OpenBao" that answers HTML,
 * redirects to another host, never ends its snapshot or sends one that is not gzip (a small
 * HTTPS server in this file: the broken endpoint *is* the input under test); storage
 * credentials holding garbage (real MinIO, fake-gcs-server, Azurite); a bucket full of keys
 * that look almost like backups (real MinIO). Each run fails with a clear reason or does
 * exactly the right thing — never a hang, a crash, a leaked secret or a deleted foreign object.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { buildKey } from "../../src/snapshot/key.ts";
import { json, runCli, show as showCli } from "../cli/run.ts";
import { type HttpsFixtureServer, serveHttps } from "../servers/https-json.ts";
import { type MinioServer, startMinio } from "../servers/minio.ts";
import { type OpenBaoCluster, startOpenBao } from "../servers/openbao.ts";
import { startTogether, superviseServers } from "../servers/process.ts";
import { issueCertificate } from "../servers/tls.ts";
import { clusterEnv, type ExecutorRun, mounts, runExecutor } from "./harness.ts";
import { startTarget, type TargetUnderTest } from "./targets.ts";

superviseServers();

const show = (run: ExecutorRun): string => `exit ${run.code}\n${run.stdout}${run.stderr}${run.raw}`;
const everything = (run: ExecutorRun): string => `${run.stdout}\n${run.stderr}\n${run.raw}`;
/** Puts the run's outcome into the test report (RELIABILITY.md quotes it). */
const outcome = (t: TestContext, run: ExecutorRun): void =>
  t.diagnostic(`exit ${run.code} ${run.result?.reason ?? ""}: ${run.result?.message ?? run.stderr}`);

// ---------------------------------------------------------------------------------------
// A broken OpenBao: each behaviour answers one path the way a misconfigured proxy, a
// captive portal or a compromised member might.

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Seen {
  readonly path: string;
  readonly token: string | undefined;
}

interface BrokenOpenBao {
  readonly address: string;
  readonly seen: Seen[];
  /** Bytes of snapshot body sent so far. */
  sent: number;
  stop(): Promise<void>;
}

const hostileToken = "s.HOSTILE-token-never-leaves-its-host-7f3a9c";

const json200 = (res: ServerResponse, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
};

const html = (status: number): Handler => {
  return (_req, res) => {
    const page = "<!DOCTYPE html><html><body><h1>Bad Gateway</h1><p>upstream says no</p></body></html>";
    res.writeHead(status, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(page) });
    res.end(page);
  };
};

const redirectTo = (location: () => string): Handler => {
  return (req, res) => {
    res.writeHead(307, { location: `${location()}${req.url ?? "/"}`, "content-length": 0 });
    res.end();
  };
};

/** gzip member header, then raw deflate "stored" blocks (never final): a gzip stream without an end. */
const gzipHeader = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
function storedBlock(data: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = 0x00; // BFINAL=0, BTYPE=00 (stored)
  header.writeUInt16LE(data.length, 1);
  header.writeUInt16LE(~data.length & 0xffff, 3);
  return Buffer.concat([header, data]);
}
/** A tar header for `state.bin` declaring the largest size an octal field holds (8 GiB). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write("0", 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return h;
}

describe("hostile input to the executor", () => {
  let cluster: OpenBaoCluster;
  let s3: TargetUnderTest;
  const servers: HttpsFixtureServer[] = [];

  before(async () => {
    [cluster, s3] = await startTogether([startOpenBao({ nodes: 1 }), startTarget("s3")]);
  });
  after(async () => {
    await Promise.all([cluster?.stop(), s3?.stop(), ...servers.map((s) => s.stop())]);
  });

  /** A member that is the leader and healthy, and answers `path` with `behaviour`. */
  const brokenOpenBao = async (routes: Record<string, Handler>): Promise<BrokenOpenBao> => {
    const cert = issueCertificate(cluster.ca, `hostile-${servers.length}`);
    const state = { seen: [] as Seen[], sent: 0 };
    let address = "";
    const server = await serveHttps(cert, (req, res) => {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      const token = req.headers["x-vault-token"];
      state.seen.push({ path, token: typeof token === "string" ? token : undefined });
      const route = Object.entries(routes).find(([prefix]) => path.startsWith(prefix))?.[1];
      if (route) return route(req, res);
      if (path === "/v1/sys/leader") return json200(res, { ha_enabled: true, is_self: true, leader_address: address });
      if (path === "/v1/sys/health") return json200(res, { initialized: true, sealed: false, version: "2.0.0" });
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"errors":[]}');
    });
    address = server.address;
    servers.push(server);
    return {
      address,
      get seen() {
        return state.seen;
      },
      get sent() {
        return state.sent;
      },
      set sent(n: number) {
        state.sent = n;
      },
      stop: () => server.stop(),
    };
  };

  /** Env for a run against `members` with a static token, storing into MinIO. */
  const hostileEnv = (members: readonly string[], extra: Record<string, string> = {}): Record<string, string> => ({
    ...clusterEnv(cluster),
    ...s3.env(),
    ...mounts({ cluster, credentials: s3.credentials, token: hostileToken }).env,
    BACKUP_OPENBAO_ADDRESSES: members.join(","),
    ...extra,
  });

  const assertNoObject = async (): Promise<void> => {
    assert.deepEqual(await s3.keys("openbao/bao/"), [], "nothing stored");
    assert.equal(await s3.openUploads(), 0, "no multipart upload left open");
  };

  describe("an OpenBao that misbehaves", () => {
    test("members answering HTML (200 and 502) and a redirect: exit 3 naming each problem, the token sent nowhere else", async (t) => {
      const elsewhere = await brokenOpenBao({ "/": (_req, res) => json200(res, { is_self: true }) });
      const html200 = await brokenOpenBao({ "/v1/sys/leader": html(200) });
      const html502 = await brokenOpenBao({ "/v1/sys/leader": html(502) });
      const redirect = await brokenOpenBao({ "/v1/sys/leader": redirectTo(() => elsewhere.address) });
      const run = await runExecutor("backup", hostileEnv([html200.address, html502.address, redirect.address]));
      outcome(t, run);
      assert.equal(run.code, 3, show(run));
      assert.equal(run.result?.reason, "NoLeader");
      const message = String(run.result?.message);
      // One problem per member, each naming the member once.
      assert.match(
        message,
        new RegExp(`${html200.address} answered sys/leader with something that is not JSON \\(text/html`),
      );
      assert.match(message, new RegExp(`${html502.address} answered sys/leader with 502: an HTML page`));
      assert.match(
        message,
        new RegExp(`${redirect.address} answered sys/leader with a redirect \\(307\\); refusing to follow it`),
      );
      assert.doesNotMatch(message, /<html|<!DOCTYPE/i, "no markup in the result line");
      assert.deepEqual(elsewhere.seen, [], "the redirect target never heard from the executor");
      assert.doesNotMatch(everything(run), /HOSTILE-token/);
      await assertNoObject();
    });

    test("a snapshot answered with a redirect to another host: exit 4 BadResponse, the token never sent there", async (t) => {
      const elsewhere = await brokenOpenBao({});
      const member = await brokenOpenBao({ "/v1/sys/storage/raft/snapshot": redirectTo(() => elsewhere.address) });
      const run = await runExecutor("backup", hostileEnv([member.address]));
      outcome(t, run);
      assert.equal(run.code, 4, show(run));
      assert.equal(run.result?.reason, "BadResponse");
      assert.match(String(run.result?.message), /snapshot with a redirect \(307\); refusing to follow it/);
      assert.ok(
        member.seen.some((s) => s.path === "/v1/sys/storage/raft/snapshot" && s.token === hostileToken),
        "the member itself was asked, with the token",
      );
      assert.deepEqual(elsewhere.seen, [], "the other host got no request, so never the token");
      assert.doesNotMatch(everything(run), /HOSTILE-token/);
      await assertNoObject();
    });

    test("a JWT login answered with a redirect: exit 4 BadResponse, the JWT sent nowhere else", async (t) => {
      const elsewhere = await brokenOpenBao({});
      const member = await brokenOpenBao({ "/v1/auth/jwt/login": redirectTo(() => elsewhere.address) });
      const m = mounts({ cluster, credentials: s3.credentials, jwt: "eyJhbGciOiJSUzI1NiJ9.HOSTILE-jwt-body.sig" });
      const run = await runExecutor("backup", {
        ...hostileEnv([member.address]),
        ...m.env,
        BACKUP_JWT_AUTH_ROLE: "backup",
      });
      outcome(t, run);
      assert.equal(run.code, 4, show(run));
      assert.equal(run.result?.reason, "BadResponse");
      assert.match(String(run.result?.message), /redirect \(307\); refusing to follow it/);
      assert.deepEqual(elsewhere.seen, []);
      assert.doesNotMatch(everything(run), /HOSTILE-jwt-body/);
      await assertNoObject();
    });

    for (const [name, routes, problem] of [
      ["an HTML page with status 200", { "/v1/sys/storage/raft/snapshot": html(200) }, /gzip/],
      ["an HTML error page (502)", { "/v1/sys/storage/raft/snapshot": html(502) }, /502: an HTML page/],
      [
        "bytes that are not gzip",
        {
          "/v1/sys/storage/raft/snapshot": (_req: IncomingMessage, res: ServerResponse) => {
            res.writeHead(200, { "content-type": "application/octet-stream" });
            res.end(Buffer.from("PK\u0003\u0004 this is a zip file, not a Raft snapshot".repeat(100)));
          },
        },
        /gzip/,
      ],
      [
        "an endless stream that is not gzip",
        {
          "/v1/sys/storage/raft/snapshot": (_req: IncomingMessage, res: ServerResponse) => {
            res.writeHead(200, { "content-type": "application/octet-stream" });
            const chunk = Buffer.alloc(64 * 1024, 0x41);
            const pump = (): void => {
              while (!res.destroyed && res.write(chunk));
              if (!res.destroyed) res.once("drain", pump);
            };
            pump();
          },
        },
        /gzip/,
      ],
    ] as const) {
      test(`a snapshot that is ${name}: exit 4 with a clear reason, nothing stored`, async (t) => {
        const member = await brokenOpenBao(routes);
        const run = await runExecutor("backup", hostileEnv([member.address]));
        outcome(t, run);
        assert.equal(run.code, 4, show(run));
        assert.match(String(run.result?.message), problem, show(run));
        assert.doesNotMatch(String(run.result?.message), /<html|<!DOCTYPE/i);
        await assertNoObject();
      });
    }

    // A well-formed gzip/tar stream that never ends (or stalls) is indistinguishable from a very
    // large snapshot still in flight. Its bound is the Job's deadline (activeDeadlineSeconds),
    // which reaches the executor as SIGTERM: the run must end promptly, say why, and leave
    // nothing behind.
    for (const stalls of [false, true]) {
      test(
        `a snapshot stream that ${stalls ? "stalls" : "never ends"}: the deadline's SIGTERM ends the run, nothing stored`,
        {
          timeout: 90_000,
        },
        async (t) => {
          let member: BrokenOpenBao | undefined;
          const snapshot: Handler = (_req, res) => {
            res.writeHead(200, { "content-type": "application/gzip" });
            const first = Buffer.concat([gzipHeader, storedBlock(tarHeader("state.bin", 0o77777777777))]);
            res.write(first);
            const zeros = storedBlock(Buffer.alloc(65_535));
            const pump = (): void => {
              if (!member) return;
              // A stalled stream sends 2 MiB and then nothing, with the connection left open.
              while (!res.destroyed && !(stalls && member.sent > 2 * 1024 * 1024)) {
                member.sent += zeros.length;
                if (!res.write(zeros)) {
                  res.once("drain", pump);
                  return;
                }
              }
            };
            pump();
          };
          member = await brokenOpenBao({ "/v1/sys/storage/raft/snapshot": snapshot });
          const target = member;
          let pid = 0;
          const deadline = setInterval(() => {
            if (pid !== 0 && target.sent > (stalls ? 2 : 24) * 1024 * 1024) {
              clearInterval(deadline);
              // Give a stalled stream a moment of silence before the deadline fires.
              setTimeout(() => process.kill(pid, "SIGTERM"), stalls ? 1500 : 0);
            }
          }, 50);
          try {
            const run = await runExecutor(
              "backup",
              hostileEnv([member.address], { BACKUP_PART_SIZE: String(5 * 1024 * 1024) }),
              {
                onStart: (p) => {
                  pid = p;
                },
              },
            );
            outcome(t, run);
            t.diagnostic(`${target.sent} bytes of snapshot sent before the deadline`);
            assert.ok(target.sent > 2 * 1024 * 1024, "the stream was flowing");
            assert.notEqual(run.code, 0, show(run));
            assert.equal(run.result?.ok, false, show(run));
            // The stop is reported as the stop, not as the upload it aborted (exit 4, not 5).
            assert.equal(run.result?.reason, "Terminated", show(run));
            assert.equal(run.code, 4, show(run));
            await assertNoObject();
          } finally {
            clearInterval(deadline);
          }
        },
      );
    }
  });

  // -------------------------------------------------------------------------------------
  describe("storage credentials holding garbage", () => {
    let gcs: TargetUnderTest;
    let azure: TargetUnderTest;
    before(async () => {
      [gcs, azure] = await startTogether([startTarget("gcs"), startTarget("azure")]);
    });
    after(async () => {
      await Promise.all([gcs?.stop(), azure?.stop()]);
    });

    const cases: {
      name: string;
      target: () => TargetUnderTest;
      credentials: Record<string, string>;
      secret: string;
      code: number;
      reason: RegExp;
      names: RegExp;
    }[] = [
      {
        name: "S3 access key and secret that are wrong",
        target: () => s3,
        credentials: {
          accessKeyId: "AKIAWRONGWRONGWRONG1",
          secretAccessKey: "S3-GARBAGE-secret/+value=0123456789abcdef",
        },
        secret: "S3-GARBAGE-secret/+value=0123456789abcdef",
        code: 5,
        reason: /^StorageAuthDenied$/,
        names: /credentials|access/i,
      },
      {
        name: "an S3 credentials Secret missing its secretAccessKey",
        target: () => s3,
        credentials: { accessKeyId: "AKIAONLYTHEIDISHERE1" },
        secret: "AKIAONLYTHEIDISHERE1-never-a-secret-anyway",
        code: 1,
        reason: /^InvalidConfig$/,
        names: /credentials\.secretAccessKey/,
      },
      {
        name: "an Azure account key that is not base64",
        target: () => azure,
        credentials: { accountKey: "AZURE-GARBAGE-%%%not*base64!!-key" },
        secret: "AZURE-GARBAGE-%%%not*base64!!-key",
        // Refused before the snapshot is opened, naming the Secret key to fix.
        code: 1,
        reason: /^InvalidConfig$/,
        names: /credentials\.accountKey/,
      },
      {
        name: "an Azure connection string that is garbage",
        target: () => azure,
        credentials: { connectionString: "AccountKey=CONN-GARBAGE-secret;;;==;DefaultEndpointsProtocol" },
        secret: "CONN-GARBAGE-secret",
        code: 1,
        reason: /^InvalidConfig$|^StorageAuthDenied$/,
        names: /connectionString/,
      },
      {
        name: "a GCS service-account JSON that is not JSON",
        target: () => gcs,
        credentials: { "credentials.json": '{"type": "service_account", "private_key": "GCS-GARBAGE-pem-body' },
        secret: "GCS-GARBAGE-pem-body",
        code: 1,
        reason: /^InvalidConfig$|^StorageAuthDenied$/,
        names: /credentials\.json/,
      },
    ];
    for (const c of cases) {
      test(`${c.name}: exit ${c.code} naming the credential, the secret never printed`, async (t) => {
        const target = c.target();
        const run = await runExecutor("backup", {
          ...clusterEnv(cluster),
          ...target.env(),
          ...mounts({ cluster, credentials: c.credentials, token: cluster.rootToken }).env,
        });
        outcome(t, run);
        assert.equal(run.code, c.code, show(run));
        assert.match(String(run.result?.reason), c.reason, show(run));
        assert.match(String(run.result?.message), c.names, show(run));
        assert.equal(everything(run).includes(c.secret), false, `the secret value leaked:\n${show(run)}`);
        assert.deepEqual(
          (await target.keys("openbao/bao/")).filter((k) => k.endsWith(".snap")),
          [],
          "nothing stored",
        );
      });
    }
  });

  // -------------------------------------------------------------------------------------
  describe("a bucket full of near-misses, odd names and 10,000 foreign objects", () => {
    let minio: MinioServer;
    const bucket = "crowded";
    const day = 24 * 3600 * 1000;
    const hex = (i: number): string => i.toString(16).padStart(8, "0");
    const seededAt = Date.now();
    const real = (daysAgo: number, id: number, kind: "scheduled" | "pre-upgrade" = "scheduled"): string =>
      buildKey({
        pathPrefix: "",
        namespace: "openbao",
        cluster: "bao",
        time: new Date(seededAt - daysAgo * day),
        kind,
        random: hex(id),
      });
    let storageEnv: Record<string, string>;
    const accepted: string[] = [];
    const rejectedByStore: string[] = [];
    let realWithManifest: string[] = [];
    let snapWithoutManifest = "";
    let preUpgrade = "";
    /** What survived the retention run, for the next test to look up one by one. */
    let survivors: string[] = [];
    let seedSeconds = 0;

    const put = async (key: string, body = ""): Promise<boolean> => {
      try {
        await minio.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        return true;
      } catch {
        return false;
      }
    };
    const exists = async (key: string): Promise<boolean> => {
      try {
        await minio.client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch {
        return false;
      }
    };

    before(async () => {
      minio = await startMinio({ name: "minio-crowded" });
      await minio.createBucket(bucket);
      const m = mounts({
        cluster,
        credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
        token: cluster.rootToken,
      });
      storageEnv = {
        BACKUP_PROVIDER: "s3",
        BACKUP_ENDPOINT: minio.endpoint,
        BACKUP_BUCKET: bucket,
        BACKUP_USE_PATH_STYLE: "true",
        BACKUP_CREDENTIALS_DIR: m.env.BACKUP_CREDENTIALS_DIR ?? "",
        BACKUP_CA_FILE: m.env.BACKUP_CA_FILE ?? "",
        BACKUP_TOKEN_FILE: m.env.BACKUP_TOKEN_FILE ?? "",
        BACKUP_AUTH_METHOD: "token",
        BACKUP_TERMINATION_MESSAGE_PATH: join(m.dir, "termination-log"),
      };
      writeFileSync(join(m.dir, "termination-log"), "");

      const manifestOf = (key: string): string =>
        JSON.stringify({
          formatVersion: 1,
          key,
          size: 6,
          sha256: "0".repeat(64),
          raftIndex: 1,
          raftTerm: 1,
          openbaoVersion: null,
          created: new Date().toISOString(),
        });

      // Real backups of this cluster: four with manifests, one whose manifest never got written.
      realWithManifest = [real(2, 2), real(3, 3), real(4, 4), real(5, 5)];
      for (const key of realWithManifest) {
        await put(key, "seeded");
        await put(`${key}.json`, manifestOf(key));
      }
      snapWithoutManifest = real(6, 6);
      await put(snapWithoutManifest, "seeded");
      preUpgrade = real(30, 30, "pre-upgrade");
      await put(preUpgrade, "seeded");

      const stamp = "2024-01-01T00-00-00Z";
      const base = "openbao/bao/";
      const nearMisses = [
        `${base}${stamp}-0000000a.snap.bak`,
        `${base}${stamp}-0000000a.snap.gz`,
        `${base}${stamp}-0000000a.snapshot`,
        `${base}${stamp}-0000000a.SNAP`,
        `${base}${stamp}-0000000a`,
        `${base}2024-01-01T00:00:00Z-0000000b.snap`,
        `${base}2024-01-01T00-00-00-0000000c.snap`,
        `${base}2024-1-01T00-00-00Z-0000000d.snap`,
        `${base}20240101T000000Z-0000000d.snap`,
        `${base}${stamp}-0000000E.snap`,
        `${base}${stamp}-000000f.snap`,
        `${base}${stamp}-0000000f0.snap`,
        `${base}2024-02-30T00-00-00Z-00000010.snap`,
        `${base}2024-01-01T24-00-00Z-00000010.snap`,
        `${base}${stamp}-00000011.json`,
        `${base}${real(7, 7).slice(base.length)}.json`, // a manifest whose snapshot is missing
        `${base}sub/${stamp}-00000012.snap`,
        `${base} ${stamp}-00000013.snap`,
        `${base}${stamp}-00000013.snap `,
        `${base}pre-upgrade${stamp}-00000014.snap`,
        `${base}Pre-Upgrade-${stamp}-00000014.snap`,
        `${base}scheduled-${stamp}-00000014.snap`,
        "openbao/bao-2/2024-01-01T00-00-00Z-00000015.snap",
        "openbao/ba/2024-01-01T00-00-00Z-00000016.snap",
        "openbao/bao.old/2024-01-01T00-00-00Z-00000017.snap",
        "openbao-x/bao/2024-01-01T00-00-00Z-00000018.snap",
        "other/openbao/bao/2024-01-01T00-00-00Z-00000019.snap",
        "OPENBAO/bao/2024-01-01T00-00-00Z-0000001a.snap",
        // "openbao/bao" itself is left to its own test below: on MinIO it hides the whole prefix.
        "openbao/bao/",
        "openbao//bao/2024-01-01T00-00-00Z-0000001b.snap",
      ];
      // Names at the edge of what S3 carries: control characters, percent-encoded bytes, a
      // lone surrogate (sent as U+FFFD), right-to-left override, emoji, NUL. The store may
      // refuse some; whatever it accepts must be left alone.
      const odd = [
        `${base}${stamp}-0000001c.snap\n`,
        `${base}\t${stamp}-0000001c.snap`,
        `${base}${stamp}-0000001c\u0001.snap`,
        `${base}${stamp}-0000001c.snap\u007f`,
        `${base}%FF%FE${stamp}-0000001d.snap`,
        `${base}${stamp}-0000001d%2Esnap`,
        `${base}\uD800${stamp}-0000001e.snap`,
        `${base}\u202E${stamp}-0000001e.snap`,
        `${base}${stamp}-0000001e.snap\u200B`,
        `${base}🦀${stamp}-0000001f.snap`,
        `${base}${stamp}-0000001f.snap\u0000`,
        `${base}../${stamp}-00000020.snap`,
        `${base}./${stamp}-00000020.snap`,
      ];
      for (const key of [...nearMisses, ...odd]) {
        if (await put(key, "foreign")) accepted.push(key);
        else rejectedByStore.push(key);
      }
      // 10,000 foreign objects under and around the prefix, as fast as MinIO takes them.
      const foreign = Array.from({ length: 10_000 }, (_, i) => {
        switch (i % 5) {
          case 0:
            return `${base}${stamp}-${hex(i)}.snap.tmp`;
          case 1:
            return `${base}foreign/${hex(i)}`;
          case 2:
            return `openbao/bao-${i}/${stamp}-${hex(i)}.snap`;
          case 3:
            return `${base}${stamp.replace("Z", "")}-${hex(i)}.snap`;
          default:
            return `openbao/ba${i}`;
        }
      });
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < foreign.length) {
          const key = foreign[next++] as string;
          assert.ok(await put(key), `put ${key}`);
        }
      };
      const started = Date.now();
      await Promise.all(Array.from({ length: 64 }, worker));
      seedSeconds = (Date.now() - started) / 1000;
      accepted.push(...foreign);
    });
    after(async () => {
      await minio?.stop();
    });

    const allKeys = async (): Promise<Set<string>> => {
      const out = new Set<string>();
      const client = minio.client();
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
        for (const o of page.Contents ?? []) if (o.Key !== undefined) out.add(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out;
    };

    interface ListJson {
      backups: { key: string; verified: boolean }[];
    }

    test("`list` shows exactly the real backups, `backup` with maxCount 2 deletes only real ones beyond it", async (t) => {
      assert.ok(accepted.length >= 10_000 + 30, `the store took ${accepted.length} foreign names`);
      t.diagnostic(
        `${accepted.length} foreign names stored in ${seedSeconds.toFixed(1)} s; refused by MinIO: ${JSON.stringify(rejectedByStore)}`,
      );
      const listed = json<ListJson>(await runCli(["list", "bao", "-n", "openbao", "-o", "json"], storageEnv));
      const realSnaps = [...realWithManifest, snapWithoutManifest, preUpgrade];
      assert.deepEqual(listed.backups.map((b) => b.key).sort(), [...realSnaps].sort(), "only real backups listed");
      assert.equal(listed.backups.find((b) => b.key === snapWithoutManifest)?.verified, false);

      const before = await allKeys();
      const run = await runExecutor("backup", {
        ...clusterEnv(cluster),
        ...storageEnv,
        BACKUP_RETENTION_MAX_COUNT: "2",
      });
      assert.equal(run.code, 0, show(run));
      const written = String(run.result?.key);
      // Candidates: just written + 4 with manifests + 1 without; keep 2 → delete 4 snapshots.
      assert.deepEqual(run.result?.retention, { kept: 2, deleted: 4, failed: 0 });
      const deleted = [real(3, 3), real(4, 4), real(5, 5), snapWithoutManifest];
      const expected = new Set(before);
      for (const key of deleted) {
        expected.delete(key);
        expected.delete(`${key}.json`);
      }
      expected.add(written);
      expected.add(`${written}.json`);
      const afterKeys = await allKeys();
      const lost = [...expected].filter((k) => !afterKeys.has(k));
      const extra = [...afterKeys].filter((k) => !expected.has(k));
      assert.deepEqual(lost, [], "no foreign or kept object was deleted");
      assert.deepEqual(extra, [], "nothing else appeared");
      for (const key of accepted) assert.ok(afterKeys.has(key), `foreign ${JSON.stringify(key)} survives`);
      survivors = [...afterKeys].filter((k) => !/\.tmp$|\/foreign\/|^openbao\/bao-\d+\/|^openbao\/ba\d+$/.test(k));

      const relisted = json<ListJson>(await runCli(["list", "bao", "-n", "openbao", "-o", "json"], storageEnv));
      assert.deepEqual(
        relisted.backups.map((b) => b.key),
        [written, real(2, 2), preUpgrade],
        showCli({ code: 0, stdout: JSON.stringify(relisted), stderr: "" }),
      );
    });

    test("an object named exactly like the cluster's prefix hides it on MinIO: the backup succeeds, retention deletes nothing", async (t) => {
      // MinIO cannot hold an object "a/b" and list the prefix "a/b/" at once: the listing comes
      // back empty. Retention then sees no candidates, so it must delete nothing — and does.
      assert.ok(survivors.length > 0);
      assert.ok(await put("openbao/bao", "foreign"));
      try {
        const run = await runExecutor("backup", {
          ...clusterEnv(cluster),
          ...storageEnv,
          BACKUP_RETENTION_MAX_COUNT: "1",
        });
        assert.equal(run.code, 0, show(run));
        const retention = run.result?.retention as { deleted: number; failed: number };
        assert.equal(retention.deleted, 0, show(run));
        assert.equal(retention.failed, 0, show(run));
        for (const key of [...survivors, String(run.result?.key), `${run.result?.key}.json`]) {
          assert.ok(await exists(key), `${JSON.stringify(key)} is still there`);
        }
        const listed = json<ListJson>(await runCli(["list", "bao", "-n", "openbao", "-o", "json"], storageEnv));
        t.diagnostic(
          `list shows ${listed.backups.length} backup(s) while "openbao/bao" exists (MinIO hides the prefix)`,
        );
      } finally {
        await minio.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: "openbao/bao" }));
      }
    });
  });
});
