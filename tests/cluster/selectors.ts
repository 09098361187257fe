/**
 * Label and field selectors as the API server parses them in list requests
 * (`?labelSelector=app%3Dweb,tier!=db`, `?fieldSelector=status.phase=Running`).
 *
 * @example
 * ```ts
 * import { parseLabelSelector } from "./selectors.ts";
 * const sel = parseLabelSelector("app=web,tier in (a,b),!canary");
 * if (!sel({ app: "web", tier: "a" })) throw new Error();
 * ```
 *
 * @module
 */

/** A parsed selector: true when the labels (or fields) match. */
export type Matcher = (values: Record<string, string>) => boolean;

function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/**
 * Parses a label selector (equality, inequality, set-based and existence requirements).
 *
 * @throws {SyntaxError} with the API server's wording for a selector it cannot parse.
 */
export function parseLabelSelector(s: string): Matcher {
  const reqs: Matcher[] = splitTop(s).map((req) => {
    let m = /^([^!=\s]+)\s*(==|=|!=)\s*([^,\s]*)$/.exec(req);
    if (m) {
      const [, key, op, value] = m;
      return op === "!="
        ? (l: Record<string, string>) => l[key] !== value
        : (l: Record<string, string>) => l[key] === value;
    }
    m = /^([^\s]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(req);
    if (m) {
      const [, key, op, list] = m;
      const values = new Set(list.split(",").map((v) => v.trim()));
      return op === "in"
        ? (l: Record<string, string>) => key in l && values.has(l[key])
        : (l: Record<string, string>) => !(key in l) || !values.has(l[key]);
    }
    m = /^(!?)([A-Za-z0-9./_-]+)$/.exec(req);
    if (m) {
      const [, not, key] = m;
      return not ? (l: Record<string, string>) => !(key in l) : (l) => key in l;
    }
    throw new SyntaxError(`unable to parse requirement: found '${req}', expected: identifier`);
  });
  return (labels) => reqs.every((r) => r(labels));
}

/**
 * Parses a field selector of `field=value`, `field==value`, `field!=value` terms, checking the
 * field names against those the resource supports.
 *
 * @throws {SyntaxError} `field label not supported: x` (the server's 400 message).
 */
export function parseFieldSelector(s: string, supported: string[]): Matcher {
  const reqs: Matcher[] = splitTop(s).map((req) => {
    const m = /^([^!=]+)(==|=|!=)(.*)$/.exec(req);
    if (!m) throw new SyntaxError(`invalid selector: '${s}'; can't understand '${req}'`);
    const [, field, op, value] = m;
    if (!supported.includes(field)) {
      throw new SyntaxError(`field label not supported: ${field}`);
    }
    return op === "!=" ? (f) => f[field] !== value : (f) => f[field] === value;
  });
  return (fields) => reqs.every((r) => r(fields));
}
