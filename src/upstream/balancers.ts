// Load-balancing algorithms. Each is compiled once per upstream over a fixed member list and
// answers `pick` with a member index (or -1) without allocating. Eligibility (health, ejection,
// exclusion) is decided by the caller through `eligible(i)`.

export interface BalancerMember {
  /** stable identity (the target origin): ring positions derive from it */
  readonly origin: string;
  readonly weight: number;
  readonly inflight: number;
}

export type Eligible = (index: number) => boolean;

export interface Balancer {
  pick(hashKey: string | undefined, eligible: Eligible): number;
}

export type BalancerKind = 'round-robin' | 'least-requests' | 'consistent-hash';

export function createBalancer(kind: BalancerKind, members: readonly BalancerMember[]): Balancer {
  switch (kind) {
    case 'round-robin': return new RoundRobin(members);
    case 'least-requests': return new LeastRequests(members);
    case 'consistent-hash': return new ConsistentHash(members);
  }
}

/**
 * Smooth weighted round-robin (nginx): every pick adds each eligible member's weight to its
 * running score, takes the highest and subtracts the total. Weights 3:1 give a,a,b,a — exact
 * proportions, interleaved rather than bursty. Weight 0 is never picked.
 */
export class SmoothWeighted {
  private readonly current: Float64Array;
  constructor(private readonly members: readonly BalancerMember[]) {
    this.current = new Float64Array(members.length);
  }

  pick(eligible: Eligible): number {
    const cur = this.current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < cur.length; i++) {
      const w = this.members[i]!.weight;
      if (w <= 0 || !eligible(i)) continue;
      cur[i]! += w;
      total += w;
      if (best < 0 || cur[i]! > cur[best]!) best = i;
    }
    if (best >= 0) cur[best]! -= total;
    return best;
  }
}

class RoundRobin implements Balancer {
  private readonly wrr: SmoothWeighted;
  constructor(members: readonly BalancerMember[]) {
    this.wrr = new SmoothWeighted(members);
  }
  pick(_key: string | undefined, eligible: Eligible): number {
    return this.wrr.pick(eligible);
  }
}

/**
 * Fewest in-flight requests relative to weight (inflight/weight, compared by cross-multiplying).
 * Ties go through smooth weighted round-robin, so idle or serial traffic still spreads by weight
 * instead of piling onto the first member.
 */
class LeastRequests implements Balancer {
  private readonly wrr: SmoothWeighted;
  // Mutable state read by the predicate below; set per pick so the predicate is allocated once.
  private eligible: Eligible = () => false;
  private best = -1;
  private readonly tied: Eligible;

  constructor(private readonly members: readonly BalancerMember[]) {
    this.wrr = new SmoothWeighted(members);
    this.tied = (i) => {
      if (!this.eligible(i)) return false;
      const a = this.members[i]!;
      const b = this.members[this.best]!;
      return a.inflight * b.weight === b.inflight * a.weight;
    };
  }

  pick(_key: string | undefined, eligible: Eligible): number {
    const m = this.members;
    let best = -1;
    for (let i = 0; i < m.length; i++) {
      const a = m[i]!;
      if (a.weight <= 0 || !eligible(i)) continue;
      if (best < 0) { best = i; continue; }
      const b = m[best]!;
      if (a.inflight * b.weight < b.inflight * a.weight) best = i;
    }
    if (best < 0) return -1;
    this.eligible = eligible;
    this.best = best;
    return this.wrr.pick(this.tied);
  }
}

/** FNV-1a over UTF-16 code units, then murmur3's finalizer: FNV alone clusters similar strings. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export const POINTS_PER_WEIGHT = 160;
/** Ring size cap: large weights scale points per weight unit down (never below 1). */
export const MAX_RING_POINTS = 160_000;

/**
 * Consistent hashing on a ring with virtual nodes (POINTS_PER_WEIGHT per weight unit). Points are
 * derived from the member origin, so adding/removing a member only moves the keys that land on
 * its points. An ineligible owner passes the key to the next eligible member clockwise.
 * A missing key falls back to weighted round-robin.
 */
export class ConsistentHash implements Balancer {
  private readonly ring: Uint32Array;
  private readonly owner: Uint32Array;
  private readonly rr: SmoothWeighted;
  /** scratch marks for the ring walk (members already found ineligible) */
  private readonly seen: Uint8Array;
  private readonly candidates: number;

  constructor(members: readonly BalancerMember[]) {
    this.rr = new SmoothWeighted(members);
    this.seen = new Uint8Array(members.length);
    let totalWeight = 0;
    let candidates = 0;
    for (const m of members) {
      if (m.weight > 0) { totalWeight += m.weight; candidates++; }
    }
    this.candidates = candidates;
    const perUnit = Math.max(1, Math.min(POINTS_PER_WEIGHT, Math.floor(MAX_RING_POINTS / Math.max(1, totalWeight))));
    const hashes: number[] = [];
    const owners: number[] = [];
    const dup = new Map<string, number>();
    members.forEach((m, i) => {
      if (m.weight <= 0) return;
      // The same origin listed twice still needs distinct points.
      const n = dup.get(m.origin) ?? 0;
      dup.set(m.origin, n + 1);
      const id = n === 0 ? m.origin : `${m.origin}#${n}`;
      for (let v = 0; v < m.weight * perUnit; v++) {
        hashes.push(hash32(`${id}-${v}`));
        owners.push(i);
      }
    });
    const order = hashes.map((_, i) => i).sort((a, b) => hashes[a]! - hashes[b]! || owners[a]! - owners[b]!);
    this.ring = Uint32Array.from(order, (i) => hashes[i]!);
    this.owner = Uint32Array.from(order, (i) => owners[i]!);
  }

  pick(hashKey: string | undefined, eligible: Eligible): number {
    if (hashKey === undefined) return this.rr.pick(eligible);
    const ring = this.ring;
    const len = ring.length;
    if (len === 0) return -1;
    const h = hash32(hashKey);
    // first point >= h (wrapping)
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === len ? 0 : lo;
    const owner = this.owner[start]!;
    if (eligible(owner)) return owner; // fast path
    // Walk clockwise; stop once every member has been found ineligible.
    const seen = this.seen;
    seen[owner] = 1;
    let rejected = 1;
    let found = -1;
    for (let k = 1; k < len && rejected < this.candidates; k++) {
      const o = this.owner[(start + k) % len]!;
      if (seen[o] === 1) continue;
      if (eligible(o)) { found = o; break; }
      seen[o] = 1;
      rejected++;
    }
    seen.fill(0);
    return found;
  }
}
