/**
 * A throw-away PKI for the test cluster, made with `openssl`: a CA, a v3 server certificate
 * for the API server (Deno's TLS rejects a self-signed certificate used as its own CA, so it
 * is a real CA and a leaf) and a client certificate for certificate authentication.
 *
 * @example
 * ```ts ignore
 * import { makePki } from "./pki.ts";
 * const dir = await Deno.makeTempDir();
 * const pki = await makePki(dir, { serverIps: ["100.64.0.1"] });
 * console.log(pki.caPem.startsWith("-----BEGIN CERTIFICATE-----"));
 * ```
 *
 * @module
 */

/** Paths and PEM texts of the test PKI. */
export interface Pki {
  /** Directory everything was written to. */
  dir: string;
  /** CA certificate (PEM file path and contents). */
  caFile: string;
  caPem: string;
  /** API server certificate and key. */
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate and key, for the certificate user. */
  clientCertFile: string;
  clientKeyFile: string;
  clientCertPem: string;
  clientKeyPem: string;
}

/** Options of {@linkcode makePki}. */
export interface PkiOptions {
  /** IP addresses in the server certificate's subjectAltName. `localhost` is always there. */
  serverIps: string[];
  /** Common name (the Kubernetes user name) of the client certificate. Default `kconnect-cert-user`. */
  clientCommonName?: string;
  /** Organization (a Kubernetes group) of the client certificate. Default `kconnect:testers`. */
  clientOrganization?: string;
  /** Days the certificates are valid. Default 2. */
  days?: number;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `Cannot make test PKI: openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/**
 * Writes a CA, a server certificate and a client certificate into `dir`.
 *
 * @throws {Error} when `openssl` is missing or fails; the message has its stderr.
 */
export async function makePki(dir: string, options: PkiOptions): Promise<Pki> {
  const days = String(options.days ?? 2);
  const cn = options.clientCommonName ?? "kconnect-cert-user";
  const org = options.clientOrganization ?? "kconnect:testers";
  const san = ["DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default.svc"]
    .concat(options.serverIps.map((ip) => `IP:${ip}`)).join(",");
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=${san}`,
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/client.ext`,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=clientAuth",
      "",
    ].join("\n"),
  );
  // deno-fmt-ignore
  const steps: string[][] = [
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "ca.key", "-out", "ca.crt", "-days", days, "-subj", "/CN=kconnect-test-ca",
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"],
    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "apiserver.key", "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver"],
    ["x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
      "-CAcreateserial", "-out", "apiserver.crt", "-days", days, "-extfile", "server.ext"],
    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "client.key", "-out", "client.csr", "-subj", `/O=${org}/CN=${cn}`],
    ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
      "-CAcreateserial", "-out", "client.crt", "-days", days, "-extfile", "client.ext"],
  ];
  for (const step of steps) await openssl(step, dir);
  return {
    dir,
    caFile: `${dir}/ca.crt`,
    caPem: await Deno.readTextFile(`${dir}/ca.crt`),
    serverCertFile: `${dir}/apiserver.crt`,
    serverKeyFile: `${dir}/apiserver.key`,
    clientCertFile: `${dir}/client.crt`,
    clientKeyFile: `${dir}/client.key`,
    clientCertPem: await Deno.readTextFile(`${dir}/client.crt`),
    clientKeyPem: await Deno.readTextFile(`${dir}/client.key`),
  };
}
