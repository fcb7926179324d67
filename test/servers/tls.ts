/**
 * A throwaway certificate authority for a test run, made with the openssl command line:
 * OpenBao, kube-apiserver and the storage servers are served over TLS signed by it, and
 * clients verify against it exactly as they would against a production CA.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CertificateAuthority {
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** PEM of the CA certificate. */
  readonly certPem: string;
}

export interface IssuedCertificate {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  readonly keyPem: string;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export function createCertificateAuthority(dir: string, commonName = "openbao-backup test CA"): CertificateAuthority {
  const keyPath = join(dir, "ca.key");
  const certPath = join(dir, "ca.crt");
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyPath], dir);
  openssl(
    ["req", "-x509", "-new", "-key", keyPath, "-sha256", "-days", "2", "-subj", `/CN=${commonName}`, "-out", certPath],
    dir,
  );
  return { dir, certPath, keyPath, certPem: readFileSync(certPath, "utf8") };
}

/**
 * Issues a server (and client) certificate for 127.0.0.1/localhost plus extra DNS names and
 * extra IP addresses (e.g. the CNI bridge gateway a server is bound to for Pods to reach).
 */
export function issueCertificate(
  ca: CertificateAuthority,
  name: string,
  dnsNames: readonly string[] = [],
  ipAddresses: readonly string[] = [],
): IssuedCertificate {
  const keyPath = join(ca.dir, `${name}.key`);
  const csrPath = join(ca.dir, `${name}.csr`);
  const certPath = join(ca.dir, `${name}.crt`);
  const extPath = join(ca.dir, `${name}.ext`);
  // An IPv6 literal may come bracketed from a URL; the SAN wants the bare address.
  const ips = [...new Set(["127.0.0.1", ...ipAddresses.map((ip) => ip.replace(/^\[(.*)\]$/, "$1"))])];
  const sans = [...ips.map((ip) => `IP:${ip}`), "DNS:localhost", ...dnsNames.map((d) => `DNS:${d}`)].join(",");
  writeFileSync(
    extPath,
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  const ecKeyPath = join(ca.dir, `${name}.ec.key`);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ecKeyPath], ca.dir);
  // PKCS#8 so every server (Go, Node) reads it.
  openssl(["pkcs8", "-topk8", "-nocrypt", "-in", ecKeyPath, "-out", keyPath], ca.dir);
  openssl(["req", "-new", "-key", keyPath, "-subj", `/CN=${name}`, "-out", csrPath], ca.dir);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      csrPath,
      "-CA",
      ca.certPath,
      "-CAkey",
      ca.keyPath,
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      extPath,
      "-out",
      certPath,
    ],
    ca.dir,
  );
  return { certPath, keyPath, certPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8") };
}
