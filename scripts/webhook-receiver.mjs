#!/usr/bin/env node
// A tiny webhook receiver for trying Vigil out: prints every alert it receives.
//   node scripts/webhook-receiver.mjs [port]        (default 9000, listens on 127.0.0.1)
// With WEBHOOK_SECRET set, it verifies the X-Vigil-Signature header the way a real receiver
// should: HMAC-SHA256 over "<X-Vigil-Timestamp>.<raw body>", compared in constant time.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 9000);
const secret = process.env.WEBHOOK_SECRET;
const seen = new Set();

createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let verdict = 'unsigned';
    if (secret) {
      const ts = String(req.headers['x-vigil-timestamp'] ?? '');
      const want = Buffer.from('sha256=' + createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex'));
      const got = Buffer.from(String(req.headers['x-vigil-signature'] ?? ''));
      verdict = got.length === want.length && timingSafeEqual(got, want) ? 'signature ok' : 'BAD SIGNATURE';
    }
    const id = req.headers['idempotency-key'];
    const duplicate = seen.has(id);
    seen.add(id);
    try {
      const alert = JSON.parse(body.toString('utf8'));
      console.log(`${new Date().toISOString()} ${duplicate ? '(duplicate) ' : ''}[${alert.severity}] ${alert.rule}: ${alert.message}  (id ${id}, ${verdict})`);
    } catch {
      console.log(`${new Date().toISOString()} non-JSON body: ${body.toString('utf8').slice(0, 200)}`);
    }
    res.writeHead(200).end('ok');
  });
}).listen(port, '127.0.0.1', () => console.log(`webhook receiver on http://127.0.0.1:${port}/ (Ctrl-C to stop)`));
