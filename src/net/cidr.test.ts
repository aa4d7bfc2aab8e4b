import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { canonicalIp, parseCidrList } from './cidr.js';
import type { IpMatcher } from './cidr.js';
import { rng } from '../../test/helpers/random.js';

function matcher(list: readonly string[]): IpMatcher {
  const r = parseCidrList(list);
  if (!r.ok) assert.fail(`unexpected errors: ${JSON.stringify(r.errors)}`);
  return r.matcher;
}


describe('canonicalIp', () => {
  const cases: [string, string | null][] = [
    ['1.2.3.4', '1.2.3.4'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:1.2.3.4', '1.2.3.4'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['0:0:0:0:0:ffff:102:304', '1.2.3.4'],
    ['::ffff:1.2.3.4%eth0', '1.2.3.4'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8::0001', '2001:db8::1'],
    ['::1', '::1'],
    ['::', '::'],
    ['fe80::1%eth0', 'fe80::1'],
    // Deprecated IPv4-compatible form is NOT the mapped form (ipaddr.js alone would say 1.2.3.4).
    ['::1.2.3.4', '::102:304'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    // Rejected:
    ['', null],
    ['x', null],
    ['unknown', null],
    ['<script>', null],
    ['01.2.3.4', null],
    ['1.2.3.04', null],
    ['0x7f.0.0.1', null],
    ['127.1', null],
    ['2130706433', null],
    ['1.2.3', null],
    ['1.2.3.4.5', null],
    ['256.1.1.1', null],
    ['1.2.3.-4', null],
    [' 1.2.3.4', null],
    ['1.2.3.4 ', null],
    ['1.2.3.4:80', null],
    ['[::1]', null],
    ['::ffff:0x7f.0.0.1', null],
    ['::ffff:010.0.0.1', null],
    ['::ffff:1.2.3.256', null],
    ['::ffff:', null],
    ['1::2::3', null],
    [':::', null],
    ['12345::', null],
    ['1:2:3:4:5:6:7', null],
    ['1:2:3:4:5:6:7:8:9', null],
    ['fe80::1%<script>', null],
    ['1'.repeat(200) + '::', null],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(canonicalIp(input), expected);
    });
  }

  it('returns null for non-strings instead of throwing', () => {
    assert.equal(canonicalIp(undefined as unknown as string), null);
    assert.equal(canonicalIp(12 as unknown as string), null);
  });

  it('output is always a valid, idempotent IP (cross-checked with node:net)', () => {
    const rand = rng(1);
    // Mutations of valid seeds give many near-valid strings, where parser bugs live.
    const seeds = ['1.2.3.4', '::ffff:1.2.3.4', '2001:db8::1', 'fe80::1%eth0', '::', '1:2:3:4:5:6:7:8', '::1.2.3.4', '255.0.10.1'];
    const alphabet = '0123456789abcdefABCDEF:.%[] x';
    const pick = (str: string): string => str[Math.floor(rand() * str.length)] ?? '';
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      let s = seeds[Math.floor(rand() * seeds.length)] ?? '';
      const edits = 1 + Math.floor(rand() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * (s.length + 1));
        const op = rand();
        if (op < 0.4) s = s.slice(0, at) + pick(alphabet) + s.slice(at);
        else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1);
        else s = s.slice(0, at) + pick(alphabet) + s.slice(at + 1);
      }
      const c = canonicalIp(s);
      if (c === null) continue;
      accepted++;
      assert.notEqual(isIP(c), 0, `${s} → ${c}`);
      assert.equal(canonicalIp(c), c, `not idempotent: ${s} → ${c}`);
      // Anything we accept, Node accepts too (we are never more lenient about what is an IP).
      assert.notEqual(isIP(s), 0, `accepted ${JSON.stringify(s)} which node:net rejects`);
    }
    assert.ok(accepted > 2000, `fuzz corpus too weak: ${accepted} accepted`);
  });
});

describe('parseCidrList: IPv4', () => {
  it('matches inside a /8 and not outside it', () => {
    const m = matcher(['10.0.0.0/8']);
    assert.equal(m.contains('10.0.0.0'), true);
    assert.equal(m.contains('10.255.255.255'), true);
    assert.equal(m.contains('11.0.0.0'), false);
    assert.equal(m.contains('9.255.255.255'), false);
  });

  it('/32 and a bare address match exactly one address', () => {
    for (const entry of ['192.0.2.1/32', '192.0.2.1']) {
      const m = matcher([entry]);
      assert.equal(m.contains('192.0.2.1'), true, entry);
      assert.equal(m.contains('192.0.2.0'), false, entry);
      assert.equal(m.contains('192.0.2.2'), false, entry);
    }
  });

  it('/0 matches every IPv4 address (plain or mapped) but no native IPv6', () => {
    const m = matcher(['0.0.0.0/0']);
    assert.equal(m.contains('0.0.0.0'), true);
    assert.equal(m.contains('255.255.255.255'), true);
    assert.equal(m.contains('::ffff:8.8.8.8'), true);
    assert.equal(m.contains('2001:db8::1'), false);
  });

  it('handles prefixes with the top bit set (signed 32-bit arithmetic)', () => {
    const m = matcher(['224.0.0.0/3', '255.255.255.255/32']);
    assert.equal(m.contains('224.0.0.1'), true);
    assert.equal(m.contains('255.0.0.1'), true);
    assert.equal(m.contains('223.255.255.255'), false);
    assert.equal(matcher(['255.255.255.255']).contains('255.255.255.254'), false);
  });

  it('IPv4-mapped IPv6 inputs match IPv4 ranges', () => {
    const m = matcher(['127.0.0.0/8']);
    assert.equal(m.contains('::ffff:127.0.0.1'), true);
    assert.equal(m.contains('::FFFF:127.0.0.1'), true);
    assert.equal(m.contains('::ffff:7f00:1'), true);
    assert.equal(m.contains('0:0:0:0:0:ffff:7f00:1'), true);
    assert.equal(m.contains('::ffff:128.0.0.1'), false);
    // IPv4-compatible (deprecated) is a different address, not a mapped one.
    assert.equal(m.contains('::127.0.0.1'), false);
  });

  it('agrees with ipaddr.js on random addresses and ranges', () => {
    const rand = rng(2);
    for (let i = 0; i < 3000; i++) {
      const prefix = Math.floor(rand() * 33);
      const base = ipaddr.IPv4.parse(`${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`);
      const net = ipaddr.IPv4.networkAddressFromCIDR(`${base.toString()}/${prefix}`);
      const m = matcher([`${net.toString()}/${prefix}`]);
      // Probe near the network (likely hits) and random (likely misses).
      const near = base.toString();
      const far = `${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.0.1`;
      for (const probe of [near, far]) {
        assert.equal(m.contains(probe), ipaddr.IPv4.parse(probe).match(net, prefix), `${probe} in ${net.toString()}/${prefix}`);
      }
    }
  });
});

describe('parseCidrList: IPv6', () => {
  it('matches a /32 case-insensitively and with zone ids', () => {
    const m = matcher(['2001:db8::/32']);
    assert.equal(m.contains('2001:db8::1'), true);
    assert.equal(m.contains('2001:DB8:FFFF:ffff::1'), true);
    assert.equal(m.contains('2001:db8::1%eth0'), true);
    assert.equal(m.contains('2001:db9::1'), false);
    assert.equal(m.contains('2001:db7:ffff::'), false);
    assert.equal(m.contains('10.0.0.1'), false);
  });

  it('/128 and a bare address match exactly one address', () => {
    for (const entry of ['::1/128', '::1', '0:0:0:0:0:0:0:1']) {
      const m = matcher([entry]);
      assert.equal(m.contains('::1'), true, entry);
      assert.equal(m.contains('::2'), false, entry);
      assert.equal(m.contains('::'), false, entry);
    }
  });

  it('prefix lengths that are not a multiple of 16', () => {
    const m = matcher(['fe80::/10']);
    assert.equal(m.contains('fe80::1'), true);
    assert.equal(m.contains('febf:ffff::1'), true);
    assert.equal(m.contains('fec0::1'), false);
    assert.equal(m.contains('fe7f::1'), false);
  });

  it('::/0 matches every IPv6 address and, via the mapped block, every IPv4 address', () => {
    const m = matcher(['::/0']);
    assert.equal(m.contains('::'), true);
    assert.equal(m.contains('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), true);
    assert.equal(m.contains('8.8.8.8'), true);
    assert.equal(m.contains('::ffff:8.8.8.8'), true);
  });

  it('an IPv4-mapped range entry matches both plain and mapped IPv4', () => {
    const m = matcher(['::ffff:10.0.0.0/104']);
    assert.equal(m.contains('10.1.2.3'), true);
    assert.equal(m.contains('::ffff:10.1.2.3'), true);
    assert.equal(m.contains('11.0.0.1'), false);
    const single = matcher(['::ffff:192.0.2.7']);
    assert.equal(single.contains('192.0.2.7'), true);
    assert.equal(single.contains('192.0.2.8'), false);
  });

  it('a v6 range that does not cover the mapped block matches no IPv4', () => {
    const m = matcher(['::/96']);
    assert.equal(m.contains('::5'), true);
    assert.equal(m.contains('1.2.3.4'), false);
  });

  it('agrees with ipaddr.js on random addresses and ranges', () => {
    const rand = rng(3);
    const part = () => Math.floor(rand() * 65536).toString(16);
    for (let i = 0; i < 1500; i++) {
      const prefix = Math.floor(rand() * 129);
      // Leading 2xxx keeps us out of the mapped block, which is tested separately.
      const base = ipaddr.IPv6.parse(`2${Math.floor(rand() * 4096).toString(16).padStart(3, '0')}:${part()}:${part()}:${part()}:${part()}:${part()}:${part()}:${part()}`);
      const net = ipaddr.IPv6.networkAddressFromCIDR(`${base.toString()}/${prefix}`);
      const m = matcher([`${net.toString()}/${prefix}`]);
      const far = `2${Math.floor(rand() * 4096).toString(16).padStart(3, '0')}:${part()}::${part()}`;
      for (const probe of [base.toString(), far]) {
        assert.equal(m.contains(probe), ipaddr.IPv6.parse(probe).match(net, prefix), `${probe} in ${net.toString()}/${prefix}`);
      }
    }
  });
});

describe('parseCidrList: aliases', () => {
  it('loopback', () => {
    const m = matcher(['loopback']);
    assert.equal(m.contains('127.0.0.1'), true);
    assert.equal(m.contains('127.255.255.254'), true);
    assert.equal(m.contains('::ffff:127.0.0.1'), true);
    assert.equal(m.contains('::1'), true);
    assert.equal(m.contains('128.0.0.1'), false);
    assert.equal(m.contains('::2'), false);
    assert.equal(m.contains('10.0.0.1'), false);
  });

  it('private', () => {
    const m = matcher(['private']);
    for (const ip of ['10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255', '192.168.0.1', '192.168.255.255', 'fc00::1', 'fdff:ffff::1', '::ffff:192.168.1.1']) {
      assert.equal(m.contains(ip), true, ip);
    }
    for (const ip of ['11.0.0.1', '172.15.255.255', '172.32.0.0', '192.169.0.1', 'fe00::1', 'fbff::1', '127.0.0.1', '::1', '8.8.8.8']) {
      assert.equal(m.contains(ip), false, ip);
    }
  });

  it('linklocal', () => {
    const m = matcher(['linklocal']);
    for (const ip of ['169.254.0.1', '169.254.255.255', 'fe80::1', 'febf::1', 'fe80::1%eth0']) assert.equal(m.contains(ip), true, ip);
    for (const ip of ['169.253.0.1', '169.255.0.1', 'fec0::1', '10.0.0.1']) assert.equal(m.contains(ip), false, ip);
  });

  it('are case-insensitive, trimmed, and combine with plain entries', () => {
    const m = matcher([' Loopback ', 'PRIVATE', '203.0.113.0/24']);
    assert.equal(m.contains('127.0.0.1'), true);
    assert.equal(m.contains('10.1.1.1'), true);
    assert.equal(m.contains('203.0.113.9'), true);
    assert.equal(m.contains('198.51.100.1'), false);
  });

  it('unknown alias-like words and Object.prototype keys are errors', () => {
    const r = parseCidrList(['localhost', 'constructor', '__proto__']);
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual(r.errors.map((e) => e.index), [0, 1, 2]);
  });
});

describe('parseCidrList: empty and invalid lists', () => {
  it('empty list → empty matcher that contains nothing', () => {
    const m = matcher([]);
    assert.equal(m.empty, true);
    assert.equal(m.contains('127.0.0.1'), false);
    assert.equal(m.contains('::1'), false);
    assert.equal(matcher(['127.0.0.1']).empty, false);
  });

  it('reports every invalid entry with its index and a reason', () => {
    const list = [
      '10.0.0.0/8', // 0 ok
      'bad', // 1
      '', // 2
      '10.0.0.1/8', // 3 host bits
      '1.2.3.4/33', // 4
      '::/129', // 5
      '10.0.0.0/', // 6
      '10.0.0.0/08', // 7
      '010.0.0.0/8', // 8
      'fe80::1%eth0', // 9
      '10.0.0.0/8/8', // 10
      '2001:db8::1/32', // 11 host bits
      'loopback', // 12 ok
      '1.2.3.4/-1', // 13
      '127.1', // 14
    ];
    const r = parseCidrList(list);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.errors.map((e) => e.index), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]);
    const reason = (i: number): string => r.errors.find((e) => e.index === i)?.reason ?? '';
    assert.match(reason(1), /"bad": not an IP address/);
    assert.match(reason(2), /empty/);
    assert.match(reason(3), /host bits set; did you mean 10\.0\.0\.0\/8\?/);
    assert.match(reason(4), /IPv4 prefix length must be 0-32/);
    assert.match(reason(5), /IPv6 prefix length must be 0-128/);
    assert.match(reason(6), /invalid prefix length/);
    assert.match(reason(7), /invalid prefix length "08"/);
    assert.match(reason(9), /zone index/);
    assert.match(reason(11), /did you mean 2001:db8::\/32\?/);
  });

  it('rejects non-string entries (config from YAML may contain numbers)', () => {
    const r = parseCidrList([10 as unknown as string, null as unknown as string]);
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual(r.errors, [{ index: 0, reason: 'entry must be a string' }, { index: 1, reason: 'entry must be a string' }]);
  });
});

describe('IpMatcher.contains on hostile input', () => {
  it('returns false and never throws', () => {
    const m = matcher(['0.0.0.0/0', '::/0']);
    for (const s of ['', '<script>', '::ffff:', ':::', '1.2.3.4/8', '1.2.3.4:80', '[::1]', 'unknown', '1'.repeat(10000), ':'.repeat(10000), '1:'.repeat(5000), '%', '::%']) {
      assert.equal(m.contains(s), false, JSON.stringify(s.slice(0, 20)));
    }
    assert.equal(m.contains(undefined as unknown as string), false);
    assert.equal(m.contains({} as unknown as string), false);
  });
});
