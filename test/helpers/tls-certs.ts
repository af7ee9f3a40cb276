// Certificates for TLS tests, made at run time with the `openssl` command in a temp dir: a
// CA, a server certificate for 127.0.0.1 and localhost signed by it, a client certificate
// signed by it, and a second, unrelated CA (for "wrong CA" tests). `serverCert(name)` makes
// another server certificate (e.g. a renewed one for a reload test).
//
//   const pki = makeTestPki();
//   pki.ca, pki.server.cert, pki.server.key, pki.client.cert, pki.client.key, pki.otherCa
//   pki.remove();   // in afterAll

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** PEM file of the test CA. */
  ca: string;
  caKey: string;
  server: CertFiles;
  client: CertFiles;
  /** PEM file of a CA that signed none of these. */
  otherCa: string;
  /** A new server certificate for 127.0.0.1/localhost signed by the CA, with this common name. */
  serverCert(name: string): CertFiles;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-pki-'));
  const selfSigned = (name: string, cn: string): void =>
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  selfSigned('ca', 'Vigil Test CA');
  selfSigned('other-ca', 'Some Other CA');
  let serial = 1;
  const signed = (name: string, cn: string, ext: string): CertFiles => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++), '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  };
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    server: signed('server', 'vigil-test-server', serverExt),
    client: signed('client', 'vigil-test-client', 'extendedKeyUsage=clientAuth\n'),
    otherCa: join(dir, 'other-ca.pem'),
    serverCert: (name) => signed(name.replace(/[^A-Za-z0-9_-]/g, '-'), name, serverExt),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
