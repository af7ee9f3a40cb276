// TLS material from files (service.md §1: certificates and keys are files, never inline
// secrets) and TLS failures said plainly. `readPem` reads one PEM file named by a setting and
// fails with the setting, the path and why (missing, unreadable, not PEM); `tlsFailure` turns
// a handshake error of Node or OpenSSL into one line that says which certificate is at fault
// and what to check. Used by the MQTT connection, the email sink and the HTTPS API.

import { readFileSync } from 'node:fs';

export class TlsFileError extends Error {
  override name = 'TlsFileError';
}

const WHY: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent is not a directory',
};

/**
 * Reads a PEM file named by `setting` (e.g. `VIGIL_MQTT_CA`). `kind` says what it must hold:
 * 'certificate' (one or more `BEGIN CERTIFICATE` blocks) or 'key' (a `PRIVATE KEY` block).
 * Throws TlsFileError naming the setting, the path and the reason.
 */
export function readPem(setting: string, path: string, kind: 'certificate' | 'key'): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new TlsFileError(`${setting}: cannot read ${path}: ${WHY[code] ?? (err as Error).message}`);
  }
  const text = data.toString('latin1');
  const ok = kind === 'certificate' ? /-----BEGIN (TRUSTED )?CERTIFICATE-----/.test(text) : /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(text);
  if (!ok) {
    if (kind === 'key' && /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) {
      throw new TlsFileError(`${setting}: ${path} holds an encrypted private key: give an unencrypted one (openssl pkey -in KEY -out KEY.plain), readable only by the service user`);
    }
    throw new TlsFileError(`${setting}: ${path} is not a PEM ${kind} file (no "-----BEGIN ${kind === 'certificate' ? 'CERTIFICATE' : 'PRIVATE KEY'}-----" line)`);
  }
  return data;
}

/** Node's certificate verification codes, said for a reader. */
const VERIFY: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its certificate is not signed by a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT: 'the issuer of its certificate is not a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the issuer of its certificate is not a trusted CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate chain ends in a self-signed CA that is not trusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed and not trusted',
  CERT_HAS_EXPIRED: 'its certificate has expired',
  CERT_NOT_YET_VALID: 'its certificate is not valid yet (check the clocks)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate does not name the host connected to',
  CERT_SIGNATURE_FAILURE: 'its certificate signature does not verify',
  CERT_REVOKED: 'its certificate is revoked',
};

/** The same by Node's message, for wrappers that replace the code (nodemailer's ESOCKET). */
const VERIFY_MESSAGES: [RegExp, string][] = [
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get (local )?issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/^self[- ]signed certificate$/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/certificate is not yet valid/i, 'CERT_NOT_YET_VALID'],
  [/does not match certificate's altnames/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
];

function verifyCode(code: string, message: string): string | null {
  if (code in VERIFY) return code;
  for (const [re, c] of VERIFY_MESSAGES) if (re.test(message)) return c;
  return null;
}

/** True for an error raised by TLS (verification, handshake alert, protocol), not by the network. */
export function isTlsFailure(err: unknown): boolean {
  const e = err as { code?: string; library?: string; message?: string } | null;
  if (!e) return false;
  return verifyCode(e.code ?? '', e.message ?? '') !== null || (e.code !== undefined && ( e.code.startsWith('ERR_SSL_') || e.code.startsWith('ERR_TLS_'))) || e.library === 'SSL routines' || /alert|handshake|certificate/i.test(e.message ?? '');
}

export interface TlsPeer {
  /** Who we talk to, e.g. `MQTT broker 127.0.0.1:8883`. */
  peer: string;
  /** The setting holding the CA we verify it against (null: the system CAs). */
  caSetting: string | null;
  caPath: string | null;
  /** The setting holding our client certificate, if we present one. */
  certSetting?: string | null;
  certPath?: string | null;
}

/**
 * One line that says which certificate failed and why: the peer's (verification against our
 * CA) or ours (the peer's alert when it refuses our client certificate).
 */
export function tlsFailure(err: unknown, p: TlsPeer): string {
  const e = err as { code?: string; message?: string; reason?: string };
  const code = e.code ?? '';
  const message = e.message ?? String(err);
  const ca = p.caPath === null ? 'the system CAs' : `the CA in ${p.caSetting} (${p.caPath})`;
  const verify = verifyCode(code, message);
  if (verify !== null) {
    return `TLS handshake with ${p.peer} failed: ${VERIFY[verify]} — checked against ${ca} (${verify}: ${message})`;
  }
  // An alert from the peer: it refused the certificate we presented (or presented none).
  if (/alert (certificate required|handshake failure|bad certificate|unknown ca|certificate unknown|certificate expired|decrypt error)/i.test(message) || /certificate required|unknown ca|bad certificate/i.test(message)) {
    const ours = p.certPath ? `the client certificate in ${p.certSetting} (${p.certPath})` : `no client certificate (set ${p.certSetting ?? 'a client certificate'})`;
    return `TLS handshake with ${p.peer} failed: the peer refused ${ours} (${message})`;
  }
  return `TLS handshake with ${p.peer} failed: ${message}${code ? ` (${code})` : ''}`;
}
