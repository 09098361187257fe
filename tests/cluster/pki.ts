/**
 * A throw-away PKI for the test cluster, made with `openssl`: a CA, a v3 server certificate
 * for the API server (Deno's TLS rejects a self-signed certificate used as its own CA, so it
 * is a real CA and a leaf) and a client certificate for certificate authentication; and, with
 * {@linkcode makeKubeletPki}, the second hop's pair: the kubelet's serving certificate and the
 * API server's kubelet client certificate.
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

/** The certificates of the API server → kubelet hop, signed by the same CA. */
export interface KubeletPki {
  /** The kubelet's serving certificate and key (`--tls-cert-file`, `--tls-private-key-file`). */
  servingCertFile: string;
  servingKeyFile: string;
  /**
   * The API server's client certificate for kubelets (`--kubelet-client-certificate`,
   * `--kubelet-client-key`).
   */
  clientCertFile: string;
  clientKeyFile: string;
  /** The user that client certificate authenticates as (its CN). */
  clientUser: string;
}

/** Options of {@linkcode makeKubeletPki}. */
export interface KubeletPkiOptions {
  /** The node's name: the serving certificate is `system:node:<name>` with it as DNS name. */
  nodeName: string;
  /** IP addresses the API server dials the kubelet at (subjectAltName of the serving cert). */
  nodeIps: string[];
  /** Days the certificates are valid. Default 2. */
  days?: number;
}

/**
 * Adds the kubelet's serving certificate and the API server's kubelet client certificate to a
 * PKI made by {@linkcode makePki} (same directory, same CA), named the way kubeadm and the
 * kubelet's serving-certificate bootstrap name them: the serving certificate is
 * `CN=system:node:<node>, O=system:nodes` (kubernetes/kubernetes pkg/kubelet/certificate/
 * kubelet.go, NewKubeletServerCertificateManager), the client certificate
 * `CN=kube-apiserver-kubelet-client, O=system:masters` (cmd/kubeadm/app/phases/certs/
 * certlist.go, KubeadmCertKubeletClient: APIServerKubeletClientCertCommonName and
 * MastersGroup).
 *
 * @throws {Error} when `openssl` fails; the message has its stderr.
 */
export async function makeKubeletPki(pki: Pki, options: KubeletPkiOptions): Promise<KubeletPki> {
  const { dir } = pki;
  const days = String(options.days ?? 2);
  const user = "kube-apiserver-kubelet-client";
  const san = [`DNS:${options.nodeName}`, ...options.nodeIps.map((ip) => `IP:${ip}`)].join(",");
  await Deno.writeTextFile(
    `${dir}/kubelet.ext`,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=${san}`,
      "",
    ].join("\n"),
  );
  // deno-fmt-ignore
  const steps: string[][] = [
    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "kubelet.key", "-out", "kubelet.csr",
      "-subj", `/O=system:nodes/CN=system:node:${options.nodeName}`],
    ["x509", "-req", "-in", "kubelet.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
      "-CAcreateserial", "-out", "kubelet.crt", "-days", days, "-extfile", "kubelet.ext"],
    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "apiserver-kubelet-client.key", "-out", "apiserver-kubelet-client.csr",
      "-subj", `/O=system:masters/CN=${user}`],
    ["x509", "-req", "-in", "apiserver-kubelet-client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
      "-CAcreateserial", "-out", "apiserver-kubelet-client.crt", "-days", days,
      "-extfile", "client.ext"],
  ];
  for (const step of steps) await openssl(step, dir);
  return {
    servingCertFile: `${dir}/kubelet.crt`,
    servingKeyFile: `${dir}/kubelet.key`,
    clientCertFile: `${dir}/apiserver-kubelet-client.crt`,
    clientKeyFile: `${dir}/apiserver-kubelet-client.key`,
    clientUser: user,
  };
}
