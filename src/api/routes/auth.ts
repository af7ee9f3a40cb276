// Bearer-token auth for the write routes (service.md §2). Added with `addHook` inside the
// encapsulated plugins that hold rule writes and admin routes only, so reads and ingest never
// pass through it (fastify encapsulation, lib/plugin-override.js). Constant-time compare over
// SHA-256 digests, so neither the token's content nor its length leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { apiError } from '../errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** True when the Authorization header carries exactly `Bearer <token>`. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  const given = m?.[1] ?? '';
  // Always compare, so a missing header takes as long as a wrong one.
  return timingSafeEqual(digest(given), digest(token)) && m !== null;
}

/** Requires the API token on every route of `app` (a no-op when no token is configured). */
export function requireToken(app: FastifyInstance, token: string | null): void {
  if (token === null) return;
  app.addHook('onRequest', async (req) => {
    if (!tokenMatches(req.headers.authorization, token)) throw apiError('VIGIL_ERR_UNAUTHORIZED');
  });
}
