/**
 * `POST /api/v1/namespaces/{ns}/services`: a subset of ValidateService and the ClusterIP
 * allocation of kubernetes/kubernetes `pkg/registry/core/service/storage/alloc.go`
 * (`allocIPs`), with the error texts of the version played:
 *
 * - every version since 1.23 (`allocIPs`): `field.Invalid(spec.clusterIPs, service.Spec.ClusterIPs,
 *   "failed to allocate IP %v: %v")` in `NewInvalid(Kind("Service"), …)`, the value printed by
 *   `field.Error.ErrorBody` with `%#v` (k8s.io/apimachinery 1.33: `[]string{"1.1.1.1"}`), so
 *   `spec.clusterIPs: Invalid value: []string{"1.1.1.1"}: failed to allocate IP 1.1.1.1: <err>`;
 * - bitmap allocator (up to 1.32, and 1.31–1.32 without MultiCIDRServiceAllocator), and the
 *   dry-run path of the ServiceCIDR allocator (1.33+: `MetaAllocator.DryRun()` is one
 *   allocator's `dryRunAllocator`, which only checks its range): `ErrNotInRange`
 *   (`pkg/registry/core/service/ipallocator/interfaces.go`), `the provided IP (1.1.1.1) is not
 *   in the valid range. The range of valid IPs is 10.96.0.0/12`;
 * - ServiceCIDR MetaAllocator (1.33+, no dry run): no allocator contains the address
 *   (`cidrallocator.go` `getAllocator`), so `ErrMismatchedNetwork`: `the provided network does not
 *   match the current range`, no range in the text; also for the network and broadcast address
 *   of a ServiceCIDR.
 *
 * @module
 */
import type { FieldError, Status } from "./status.ts";
import { alreadyExists, badRequest, invalid, notFound } from "./status.ts";
import type { KObject } from "./objects.ts";
import { serviceObject } from "./objects.ts";
import type { ServicePortSpec } from "./config.ts";
import type { Store } from "./store.ts";

/** What the create needs to know about the server. */
export interface ServiceCreateContext {
  store: Store;
  serviceCIDRs: string[];
  /** True when the ServiceCIDR (MultiCIDRServiceAllocator) allocator is in use (1.33+). */
  metaAllocator: boolean;
}

function ipv4ToInt(ip: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function cidrRange(cidr: string): { base: number; size: number } {
  const [ip, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return { base: ipv4ToInt(ip)!, size };
}

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** `%#v` of a []string, as field.Invalid prints it. */
function goStringSlice(values: string[]): string {
  return `[]string{${values.map((v) => JSON.stringify(v)).join(", ")}}`;
}

/**
 * Handles a create. Returns `[201, Service]` or `[code, Status]`.
 */
export function createService(
  ctx: ServiceCreateContext,
  namespace: string,
  body: unknown,
  dryRun: boolean,
): [number, KObject | Status] {
  if (!ctx.store.get("namespaces", undefined, namespace)) {
    return [404, notFound("namespaces", namespace)];
  }
  if (typeof body !== "object" || body === null) {
    return [400, badRequest("the body of the request was in an unknown format")];
  }
  const svc = body as {
    metadata?: {
      name?: string;
      generateName?: string;
      namespace?: string;
      labels?: Record<string, string>;
    };
    spec?: {
      clusterIP?: string;
      clusterIPs?: string[];
      ports?: ServicePortSpec[];
      selector?: Record<string, string>;
      type?: string;
    };
  };
  const meta = svc.metadata ?? {};
  if (meta.namespace && meta.namespace !== namespace) {
    return [
      400,
      badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      ),
    ];
  }
  let name = meta.name ?? "";
  if (!name && meta.generateName) name = meta.generateName + Math.random().toString(36).slice(2, 7);
  const spec = svc.spec ?? {};
  const errors: FieldError[] = [];
  if (!name) {
    errors.push({
      field: "metadata.name",
      type: "FieldValueRequired",
      body: "Required value: name or generateName is required",
    });
  } else if (!DNS1035.test(name) || name.length > 63) {
    errors.push({
      field: "metadata.name",
      type: "FieldValueInvalid",
      body: `Invalid value: ${JSON.stringify(name)}: a DNS-1035 label must consist of lower ` +
        `case alphanumeric characters or '-', start with an alphabetic character, and end ` +
        `with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for ` +
        `validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
    });
  }
  const ips = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  const headless = ips[0] === "None";
  const ports = spec.ports ?? [];
  if (ports.length === 0 && !headless) {
    errors.push({ field: "spec.ports", type: "FieldValueRequired", body: "Required value" });
  }
  ports.forEach((p, i) => {
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      errors.push({
        field: `spec.ports[${i}].port`,
        type: "FieldValueInvalid",
        body: `Invalid value: ${p.port}: must be between 1 and 65535, inclusive`,
      });
    }
  });
  if (!headless) {
    ips.forEach((ip, i) => {
      if (ipv4ToInt(ip) === null) {
        errors.push({
          field: `spec.clusterIPs[${i}]`,
          type: "FieldValueInvalid",
          body: `Invalid value: ${JSON.stringify(ip)}: must be a valid IP address, ` +
            `(e.g. 10.9.8.7 or 2001:db8::ffff)`,
        });
      }
    });
  }
  if (errors.length) return [422, invalid("Service", name, errors)];
  if (ctx.store.get("services", namespace, name)) {
    return [409, alreadyExists("services", name)];
  }
  let clusterIPs = ips;
  if (!headless) {
    if (ips.length) {
      const err = allocationError(ctx, ips[0], dryRun);
      if (err) {
        return [
          422,
          invalid("Service", name, [{
            field: "spec.clusterIPs",
            type: "FieldValueInvalid",
            body: `Invalid value: ${goStringSlice(ips)}: failed to allocate IP ${ips[0]}: ${err}`,
          }]),
        ];
      }
    } else {
      clusterIPs = [dryRun ? ctx.serviceCIDRs[0].split("/")[0] : nextFree(ctx)];
    }
  }
  const obj = serviceObject({
    name,
    namespace,
    clusterIPs,
    ports,
    selector: spec.selector,
    labels: meta.labels,
  }, ctx.store.stamp());
  if (!dryRun) ctx.store.create("services", obj);
  return [201, obj];
}

function used(ctx: ServiceCreateContext): Set<string> {
  return new Set(
    ctx.store.list("services").flatMap((s) =>
      (s.spec as { clusterIPs?: string[] }).clusterIPs ?? []
    ),
  );
}

function allocationError(ctx: ServiceCreateContext, ip: string, dryRun: boolean): string | null {
  const n = ipv4ToInt(ip)!;
  // Neither the network address nor the IPv4 broadcast address is usable: both allocators
  // start at network+1 and stop at broadcast-1 (ipallocator.go NewIPAllocator, bitmap.go
  // Range), and pkg/api/servicecidr's prefixContainsIP leaves both out.
  const contains = (cidr: string) => {
    const { base, size } = cidrRange(cidr);
    return n > base && n < base + size - 1;
  };
  const notInRange = (cidr: string) =>
    `the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${cidr}`;
  if (ctx.metaAllocator) {
    // alloc.go allocIPs: with dryRun the allocator is MetaAllocator.DryRun(), one ServiceCIDR's
    // dryRunAllocator, whose allocateService only checks that range (ErrNotInRange).
    if (dryRun) return contains(ctx.serviceCIDRs[0]) ? null : notInRange(ctx.serviceCIDRs[0]);
    // MetaAllocator.AllocateService: getAllocator finds no ServiceCIDR containing the address.
    if (!ctx.serviceCIDRs.some(contains)) {
      return "the provided network does not match the current range";
    }
  } else if (!contains(ctx.serviceCIDRs[0])) {
    return notInRange(ctx.serviceCIDRs[0]);
  }
  // ErrAllocated (the IPAddress object, or the bitmap bit, exists).
  if (used(ctx).has(ip)) return "provided IP is already allocated";
  return null;
}

function nextFree(ctx: ServiceCreateContext): string {
  const taken = used(ctx);
  const { base, size } = cidrRange(ctx.serviceCIDRs[0]);
  for (let i = size - 2; i > 0; i--) {
    const ip = intToIpv4(base + i);
    if (!taken.has(ip)) return ip;
  }
  throw new Error("range is full");
}
