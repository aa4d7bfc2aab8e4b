// RFC 7239 `Forwarded` parsing, exercised through the public resolver.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidrList } from './cidr.js';
import { compileClientIpResolver, MAX_FORWARDED_HOPS } from './client-ip.js';

const parsed = parseCidrList(['10.0.0.0/8', '::1']);
if (!parsed.ok) throw new Error('bad fixture');
const resolve = compileClientIpResolver(parsed.matcher);
const PROXY = '10.0.0.1';
const CLIENT = '203.0.113.5';
const fwd = (header: string): string => resolve(PROXY, header, undefined);

describe('Forwarded: well-formed values', () => {
  const cases: [string, string, string][] = [
    ['token IPv4', `for=${CLIENT}`, CLIENT],
    ['parameter name is case-insensitive', `For=${CLIENT}`, CLIENT],
    ['FOR', `FOR=${CLIENT}`, CLIENT],
    ['quoted IPv4', `for="${CLIENT}"`, CLIENT],
    ['quoted IPv4 with port', `for="${CLIENT}:8080"`, CLIENT],
    ['IPv4 with obfuscated port', `for="${CLIENT}:_p1"`, CLIENT],
    ['other parameters around for', `proto=https;for=${CLIENT};by=10.0.0.1;host=example.com`, CLIENT],
    ['whitespace around ";"', `for=${CLIENT} ; proto=https`, CLIENT],
    ['empty pairs', `;for=${CLIENT};;`, CLIENT],
    ['IPv6 with port', 'for="[2001:db8:cafe::17]:4711"', '2001:db8:cafe::17'],
    ['IPv6 without port', 'for="[2001:DB8:CAFE::17]"', '2001:db8:cafe::17'],
    ['IPv6 with obfuscated port', 'for="[2001:db8::1]:_abc"', '2001:db8::1'],
    ['IPv4-mapped IPv6', 'for="[::ffff:203.0.113.5]"', CLIENT],
    ['trusted [::1]:80 is skipped', `for=${CLIENT}, for="[::1]:80"`, CLIENT],
    ['attacker-chosen element left of the client', `for=6.6.6.6, for=${CLIENT}`, CLIENT],
    ['trusted hops skipped', `for=6.6.6.6, for=${CLIENT}, for=10.0.0.3;proto=https, for="10.0.0.2:443"`, CLIENT],
    ['all trusted → leftmost', 'for=10.0.0.5, for=10.0.0.3', '10.0.0.5'],
    ['empty list elements are ignored', `for=${CLIENT}, ,,for=10.0.0.2,`, CLIENT],
  ];
  for (const [name, header, expected] of cases) {
    it(`${name}: ${header} → ${expected}`, () => assert.equal(fwd(header), expected));
  }
});

describe('Forwarded: walk stops, returning the last trusted hop', () => {
  const cases: [string, string, string][] = [
    ['for=unknown', `for=${CLIENT}, for=unknown`, PROXY],
    ['for="unknown" behind a trusted hop', `for=${CLIENT}, for="unknown", for=10.0.0.2`, '10.0.0.2'],
    ['obfuscated node', `for=${CLIENT}, for=_hidden`, PROXY],
    ['obfuscated node with port', `for=${CLIENT}, for="_hidden:80"`, PROXY],
    ['element without for', `for=${CLIENT}, proto=https`, PROXY],
    ['duplicate for in one element', `for=${CLIENT};for=10.0.0.2`, PROXY],
    ['unbracketed IPv6 (RFC requires brackets)', 'for="2001:db8::1"', PROXY],
    ['bracketed IPv4', 'for="[203.0.113.5]"', PROXY],
    ['bad port', `for="${CLIENT}:99999"`, PROXY],
    ['bad IPv6 port', 'for="[2001:db8::1]:x"', PROXY],
    ['garbage', 'for=<script>', PROXY],
    ['garbage quoted', 'for="<script>alert(1)</script>"', PROXY],
    ['hostname', 'for=proxy.internal', PROXY],
    ['escaped characters in for', `for="203.0.113\\.5"`, PROXY],
    ['empty value', 'for=', PROXY],
    ['empty quoted value', 'for=""', PROXY],
    ['missing "="', 'for', PROXY],
    ['missing name', `=${CLIENT}`, PROXY],
    ['whitespace around "="', `for = ${CLIENT}`, PROXY],
    ['junk after value', `for=${CLIENT} x`, PROXY],
    ['junk after quoted value', `for="${CLIENT}"x`, PROXY],
    ['unterminated quote', `for="${CLIENT}`, PROXY],
    ['malformed element behind trusted hop', `for=${CLIENT}, for=, for=10.0.0.2`, '10.0.0.2'],
  ];
  for (const [name, header, expected] of cases) {
    it(`${name}: ${header} → ${expected}`, () => assert.equal(fwd(header), expected));
  }
});

describe('Forwarded: quoting cannot be used to smuggle elements', () => {
  it('a comma inside a quoted value does not split the element', () => {
    assert.equal(fwd(`for=${CLIENT};host="a,b", for=10.0.0.2`), CLIENT);
  });

  it('an escaped quote inside a quoted value is handled', () => {
    assert.equal(fwd(`for=${CLIENT};host="a\\",b", for=10.0.0.2`), CLIENT);
    assert.equal(fwd(`for=${CLIENT};host="a\\\\", for=10.0.0.2`), CLIENT);
  });

  it('an unterminated quote sent by the client cannot swallow proxy-appended elements', () => {
    // The client sends `for="6.6.6.6`; the trusted proxy appends its view of the client.
    assert.equal(fwd(`for="6.6.6.6, for=${CLIENT}`), CLIENT);
    assert.equal(fwd(`for=6.6.6.6;x=", for=${CLIENT}, for=10.0.0.2`), CLIENT);
  });

  it('a quote-balanced fake element inside a value is not an element', () => {
    assert.equal(fwd(`for=${CLIENT};x="for=10.9.9.9, for=10.9.9.8"`), CLIENT);
  });
});

describe('Forwarded: limits', () => {
  it(`stops after ${MAX_FORWARDED_HOPS} elements`, () => {
    const hops = Array.from({ length: 40 }, (_, i) => `for=10.0.1.${i}`);
    assert.equal(fwd([`for=${CLIENT}`, ...hops.slice(0, 31)].join(', ')), CLIENT);
    const tooMany = [`for=${CLIENT}`, ...hops.slice(0, 32)];
    assert.equal(fwd(tooMany.join(', ')), '10.0.1.0');
  });

  it('handles a huge hostile prefix quickly', () => {
    const header = `${'for=6.6.6.6;x="\\"", '.repeat(3000)}for=${CLIENT}, for=10.0.0.2`;
    const t = process.hrtime.bigint();
    assert.equal(fwd(header), CLIENT);
    assert.ok(Number(process.hrtime.bigint() - t) < 50e6, 'took more than 50ms');
  });
});
