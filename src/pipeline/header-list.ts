// A response head as a flat [name, value, name, value, ...] list: the form Node's writeHead takes
// without a for-in pass, and cheap to edit for the handful of headers a response has. Names are
// lower-case (undici delivers them so, and stages must use lower case).

export type HeaderValue = string | string[] | number;

export class HeaderList {
  constructor(readonly items: HeaderValue[] = []) {}

  get(name: string): HeaderValue | undefined {
    const it = this.items;
    for (let i = 0; i < it.length; i += 2) if (it[i] === name) return it[i + 1];
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replaces every value of `name` with one value. */
  set(name: string, value: HeaderValue): void {
    this.remove(name);
    this.items.push(name, value);
  }

  /** Adds a value, keeping existing ones (e.g. another Set-Cookie). */
  append(name: string, value: HeaderValue): void {
    this.items.push(name, value);
  }

  remove(name: string): void {
    const it = this.items;
    let w = 0;
    for (let i = 0; i < it.length; i += 2) {
      if (it[i] === name) continue;
      if (w !== i) { it[w] = it[i]!; it[w + 1] = it[i + 1]!; }
      w += 2;
    }
    it.length = w;
  }
}

/** Removes, in place, every pair of a flat [name, value, ...] request header list whose name (any case) is in `drop`. */
export function removeHeaderPairs(pairs: string[], drop: ReadonlySet<string>): void {
  let w = 0;
  for (let i = 0; i < pairs.length; i += 2) {
    if (drop.has(pairs[i]!.toLowerCase())) continue;
    pairs[w++] = pairs[i]!;
    pairs[w++] = pairs[i + 1]!;
  }
  pairs.length = w;
}

/**
 * The value of request header `lowerName` in a flat [name, value, ...] list (any-case names, e.g.
 * req.rawHeaders) when it appears exactly once; undefined when it is absent or repeated (ambiguous).
 */
export function singleHeaderValue(pairs: readonly string[], lowerName: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) {
      if (value !== undefined) return undefined;
      value = pairs[i + 1]!;
    }
  }
  return value;
}
