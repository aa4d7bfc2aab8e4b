import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { canonicalIp, parseCidrList } from './cidr.js';
import type { IpMatcher } from './cidr.js';
import { compileClientIpResolver, MAX_FORWARDED_HOPS, UNKNOWN_CLIENT_IP } from './client-ip.js';
import type { ClientIpResolver } from './client-ip.js';

function matcher(list: readonly string[]): IpMatcher {
  const r = parseCidrList(list);
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return r.matcher;
}

// Proxies live in 10/8 and at ::1; everything else is the internet.
const trusted = matcher(['10.0.0.0/8', '::1']);
const resolve: ClientIpResolver = compileClientIpResolver(trusted);
const PROXY = '10.0.0.1';
const CLIENT = '203.0.113.5';

describe('compileClientIpResolver: peer handling', () => {
  it('with no trusted proxies, returns the canonical peer and ignores headers', () => {
    const r = compileClientIpResolver(matcher([]));
    assert.equal(r('::ffff:10.0.0.1', 'for=1.2.3.4', '1.2.3.4'), '10.0.0.1');
    assert.equal(r('2001:DB8::1', undefined, '1.2.3.4'), '2001:db8::1');
    assert.equal(r('', undefined, '1.2.3.4'), UNKNOWN_CLIENT_IP);
  });

  it('untrusted peer: X-Forwarded-For and Forwarded are ignored (spoofing attempt)', () => {
    assert.equal(resolve(CLIENT, undefined, '1.2.3.4'), CLIENT);
    assert.equal(resolve(CLIENT, 'for=1.2.3.4', undefined), CLIENT);
    assert.equal(resolve(CLIENT, undefined, ['1.2.3.4', '10.0.0.2']), CLIENT);
    assert.equal(resolve('::ffff:203.0.113.5', undefined, '1.2.3.4'), CLIENT);
    assert.equal(resolve('fe80::1%eth0', undefined, '1.2.3.4'), 'fe80::1');
  });

  it('a peer that is not an IP yields the unknown marker and headers are not trusted', () => {
    assert.equal(resolve('', undefined, CLIENT), UNKNOWN_CLIENT_IP);
    assert.equal(resolve(undefined as unknown as string, undefined, CLIENT), UNKNOWN_CLIENT_IP);
    assert.equal(resolve('/run/portcullis.sock', 'for=1.2.3.4', CLIENT), UNKNOWN_CLIENT_IP);
    assert.equal(isIP(UNKNOWN_CLIENT_IP), 4);
  });

  it('trusted peer (plain, mapped, v6) without headers is the client', () => {
    assert.equal(resolve(PROXY, undefined, undefined), PROXY);
    assert.equal(resolve('::ffff:10.0.0.1', undefined, undefined), PROXY);
    assert.equal(resolve('::1', undefined, undefined), '::1');
    assert.equal(resolve('::ffff:10.0.0.1', undefined, CLIENT), CLIENT);
    assert.equal(resolve('0:0::1', undefined, CLIENT), CLIENT);
  });
});

describe('compileClientIpResolver: X-Forwarded-For', () => {
  const cases: [string, string, string][] = [
    ['single client', CLIENT, CLIENT],
    ['attacker-chosen entry left of the real client is ignored', `6.6.6.6, ${CLIENT}`, CLIENT],
    ['attacker claims to be a trusted proxy', `10.9.9.9, ${CLIENT}`, CLIENT],
    ['trusted intermediates are skipped', `6.6.6.6, ${CLIENT}, 10.0.0.3, 10.0.0.2`, CLIENT],
    ['all trusted → leftmost', '10.0.0.5, 10.0.0.3', '10.0.0.5'],
    ['no spaces', `${CLIENT},10.0.0.2`, CLIENT],
    ['tabs and extra spaces', ` \t${CLIENT} \t,  10.0.0.2 `, CLIENT],
    ['garbage at the right stops at the peer', `${CLIENT}, <script>`, PROXY],
    ['garbage behind a trusted hop stops at that hop', `${CLIENT}, <script>, 10.0.0.3`, '10.0.0.3'],
    ['garbage left of the client is never read', `<script>, ${CLIENT}`, CLIENT],
    ['"unknown" stops the walk', `${CLIENT}, unknown`, PROXY],
    ['hostname stops the walk', `${CLIENT}, proxy.internal`, PROXY],
    ['legacy IPv4 forms are not addresses', `${CLIENT}, 0x0a.0.0.1`, PROXY],
    ['trailing empty element is ignored', `${CLIENT}, `, CLIENT],
    ['empty elements in the middle are ignored', `${CLIENT},, ,10.0.0.2`, CLIENT],
    ['only empty elements → peer', ' , ,', PROXY],
    ['empty header → peer', '', PROXY],
    ['IPv4 with port', `${CLIENT}:5678`, CLIENT],
    ['IPv4 with port behind trusted hop with port', `${CLIENT}:5678, 10.0.0.2:443`, CLIENT],
    ['IPv4 with out-of-range port is malformed', `${CLIENT}:99999`, PROXY],
    ['IPv4 with empty port is malformed', `${CLIENT}:`, PROXY],
    ['IPv4 with non-numeric port is malformed', `${CLIENT}:http`, PROXY],
    ['unbracketed IPv6', '2001:DB8:0::1', '2001:db8::1'],
    ['bracketed IPv6', '[2001:db8::1]', '2001:db8::1'],
    ['bracketed IPv6 with port', '[2001:db8::1]:80', '2001:db8::1'],
    ['bracketed trusted ::1 with port is skipped', `${CLIENT}, [::1]:80`, CLIENT],
    ['bracketed IPv4 is malformed', '[203.0.113.5]', PROXY],
    ['unterminated bracket is malformed', '[2001:db8::1', PROXY],
    ['junk after bracket is malformed', '[2001:db8::1]x', PROXY],
    ['IPv4-mapped entry is canonicalized', '::FFFF:203.0.113.5', CLIENT],
    ['IPv4-mapped trusted entry is skipped', `${CLIENT}, ::ffff:10.0.0.9`, CLIENT],
    ['zone id is dropped', 'fe80::1%eth0', 'fe80::1'],
  ];
  for (const [name, xff, expected] of cases) {
    it(`${name}: ${JSON.stringify(xff)} → ${expected}`, () => {
      assert.equal(resolve(PROXY, undefined, xff), expected);
    });
  }

  it('multiple header lines are one chain, in order', () => {
    assert.equal(resolve(PROXY, undefined, [CLIENT, '10.0.0.2']), CLIENT);
    assert.equal(resolve(PROXY, undefined, ['6.6.6.6', `${CLIENT}, 10.0.0.2`]), CLIENT);
    // The last line is the rightmost: order must not be reversed.
    assert.equal(resolve(PROXY, undefined, ['198.51.100.1', CLIENT]), CLIENT);
    assert.equal(resolve(PROXY, undefined, [CLIENT, '198.51.100.1']), '198.51.100.1');
    assert.equal(resolve(PROXY, undefined, ['10.0.0.7', '10.0.0.2']), '10.0.0.7');
    assert.equal(resolve(PROXY, undefined, [CLIENT, '<script>']), PROXY);
    assert.equal(resolve(PROXY, undefined, []), PROXY);
  });

  it(`examines at most MAX_FORWARDED_HOPS (${MAX_FORWARDED_HOPS}) elements`, () => {
    assert.equal(MAX_FORWARDED_HOPS, 32);
    const hops = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.${Math.floor(i / 256)}.${i % 256}`);
    // Client within reach: 31 trusted hops to its right.
    assert.equal(resolve(PROXY, undefined, [CLIENT, ...hops(31)].join(', ')), CLIENT);
    // One more trusted hop and the client is out of reach: the last trusted hop examined wins.
    const chain = hops(32);
    assert.equal(resolve(PROXY, undefined, [CLIENT, ...chain].join(', ')), chain[0]);
    // The cap spans header lines and counts empty elements.
    assert.equal(resolve(PROXY, undefined, [CLIENT, ...chain.map((h) => `${h}`)]), chain[0]);
    assert.equal(resolve(PROXY, undefined, `${CLIENT}${','.repeat(40)}`), PROXY);
  });

  it('a huge hostile header costs at most the cap (does not scan it all)', () => {
    const big = `${'6.6.6.6, '.repeat(5000)}${'10.0.0.2, '.repeat(100)}`;
    assert.equal(resolve(PROXY, undefined, big), '10.0.0.2');
  });
});

describe('compileClientIpResolver: header selection', () => {
  it('Forwarded wins over X-Forwarded-For when it has elements (auto)', () => {
    assert.equal(resolve(PROXY, `for=${CLIENT}`, '198.51.100.1'), CLIENT);
    // Even when Forwarded stops the walk, X-Forwarded-For is not consulted.
    assert.equal(resolve(PROXY, 'for=unknown', '198.51.100.1'), PROXY);
  });

  it('an empty or whitespace-only Forwarded counts as absent', () => {
    assert.equal(resolve(PROXY, '', CLIENT), CLIENT);
    assert.equal(resolve(PROXY, ' , ', CLIENT), CLIENT);
  });

  it('header: "x-forwarded-for" ignores a client-sent Forwarded', () => {
    const r = compileClientIpResolver(trusted, { header: 'x-forwarded-for' });
    assert.equal(r(PROXY, 'for=6.6.6.6', CLIENT), CLIENT);
    assert.equal(r(PROXY, 'for=6.6.6.6', undefined), PROXY);
  });

  it('rejects an unknown header mode at compile time', () => {
    assert.throws(() => compileClientIpResolver(trusted, { header: 'X-Forwarded-For' as 'auto' }), TypeError);
  });

  it('header: "forwarded" ignores X-Forwarded-For', () => {
    const r = compileClientIpResolver(trusted, { header: 'forwarded' });
    assert.equal(r(PROXY, undefined, '6.6.6.6'), PROXY);
    assert.equal(r(PROXY, '', '6.6.6.6'), PROXY);
    assert.equal(r(PROXY, `for=${CLIENT}`, '6.6.6.6'), CLIENT);
  });
});

describe('compileClientIpResolver: invariants under fuzzing', () => {
  it('always returns a canonical IP; never an attacker string; untrusted peer always wins', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const atoms = [CLIENT, '10.0.0.2', '::1', '[::1]:80', '2001:db8::1', '[2001:db8::1]:443', '<script>', 'unknown', '_hidden',
      ' ', ',', ';', '"', '\\', '=', 'for=', 'For=', 'proto=https', ':', '[', ']', '1.2.3.4:5678', '::ffff:10.0.0.3', '%eth0', '\t', ''];
    const gen = (): string => {
      let s = '';
      const n = Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) s += atoms[Math.floor(rand() * atoms.length)];
      return s;
    };
    const peers = [PROXY, '::ffff:10.0.0.1', '::1', CLIENT, '2001:db8::9'];
    for (let i = 0; i < 20000; i++) {
      const peer = peers[i % peers.length] ?? PROXY;
      const fwd = rand() < 0.5 ? gen() : undefined;
      const xff = rand() < 0.3 ? [gen(), gen()] : gen();
      const out = resolve(peer, fwd, xff);
      assert.notEqual(isIP(out), 0, `invalid result ${JSON.stringify(out)} for ${JSON.stringify([peer, fwd, xff])}`);
      assert.equal(canonicalIp(out), out);
      if (!trusted.contains(peer)) assert.equal(out, canonicalIp(peer));
    }
  });
});
