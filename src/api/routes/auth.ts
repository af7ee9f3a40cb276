// Bearer-token auth for the write routes (service.md §2). Added with `addHook` inside the
// encapsulated plugins that hold rule writes and admin routes only, so reads and ingest never
// pass through it (fastify encapsulation, lib/plugin-override.js). Constant-time compare over
// SHA-256 digests, so neither the token's content nor its length leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { apiError } from '../errors.js';

const digest = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/**
 * True when the Authorization header carries exactly `Bearer <token>`. The token may hold any
 * printable characters, spaces included (the configuration trims its ends, so the header's
 * are trimmed too). Node hands header bytes over as latin1: they are compared as the bytes
 * sent with the token's UTF-8 bytes, so a non-ASCII token works too.
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer +(.*)$/is.exec(header ?? '');
  const given = Buffer.from((m?.[1] ?? '').trim(), 'latin1');
  // Always compare, so a missing header takes as long as a wrong one.
  return timingSafeEqual(digest(given), digest(Buffer.from(token, 'utf8'))) && m !== null;
}

/** Requires the API token on every route of `app` (a no-op when no token is configured). */
export function requireToken(app: FastifyInstance, token: string | null): void {
  if (token === null) return;
  app.addHook('onRequest', async (req) => {
    if (!tokenMatches(req.headers.authorization, token)) throw apiError('VIGIL_ERR_UNAUTHORIZED');
  });
}
