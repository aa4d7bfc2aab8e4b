// Cost of parseJsonLimited (scan + JSON.parse) against bare JSON.parse, on a realistic ~1 KB
// document and a ~100 KB one. Run: node --import tsx src/body/bench-json.mjs
import { parseJsonLimited, scanJson } from './json.ts';
import { DEFAULT_BODY_LIMITS } from './index.ts';

function order(i) {
  return {
    id: `ord_${i.toString(36).padStart(8, '0')}`,
    customer: { id: 1000 + i, name: 'Ada Lovelace', email: 'ada@example.com', vip: i % 3 === 0 },
    shipping: { street: '12 Analytical Engine Rd', city: 'London', zip: 'N1 9GU', country: 'GB' },
    items: [
      { sku: 'BK-001', title: 'Notes on the Engine', qty: 1, price: 19.99, tags: ['book', 'history'] },
      { sku: 'PN-042', title: 'Fountain pen \u00e9dition', qty: 2, price: 4.5, tags: ['stationery'] },
    ],
    total: 28.99, currency: 'GBP', paid: true, note: null, createdAt: '2024-05-01T12:34:56.789Z',
  };
}
const small = JSON.stringify({ ...order(1), items: [...order(1).items, ...order(2).items, ...order(3).items] });
const large = JSON.stringify({ orders: Array.from({ length: 150 }, (_, i) => order(i)), page: 1, next: 'cursor\\u0041' });

function bench(name, fn, text, minMs = 1500) {
  for (let i = 0; i < 2000; i++) fn(text); // warm-up
  let n = 0;
  const t0 = process.hrtime.bigint();
  let t;
  do {
    for (let i = 0; i < 200; i++) fn(text);
    n += 200;
    t = Number(process.hrtime.bigint() - t0) / 1e6;
  } while (t < minMs);
  return (t * 1000) / n;
}

const L = DEFAULT_BODY_LIMITS;
for (const [label, text] of [['~1 KB', small], ['~100 KB', large]]) {
  const bare = bench('JSON.parse', (s) => JSON.parse(s), text);
  const scan = bench('scanJson', (s) => scanJson(s, L), text);
  const full = bench('parseJsonLimited', (s) => parseJsonLimited(s, L), text);
  const buf = Buffer.from(text);
  const fromBuf = bench('parseJsonLimited(Buffer)', (b) => parseJsonLimited(b, L), buf);
  console.log(`${label} (${buf.length} bytes): JSON.parse ${bare.toFixed(2)} µs | scan ${scan.toFixed(2)} µs | scan+parse ${full.toFixed(2)} µs (x${(full / bare).toFixed(2)}) | from Buffer (UTF-8 check + decode) ${fromBuf.toFixed(2)} µs`);
}
