/** A throwaway certificate for 127.0.0.1 (P-256, one day), made by the system's openssl, for the tests of TLS listeners and senders. */
import { execFileSync } from 'node:child_process';

/** Writes the certificate and its key to the files named; `commonName` tells two certificates apart. */
export function writeSelfSigned(files: { cert: string; key: string }, commonName = '127.0.0.1'): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      files.key,
      '-out',
      files.cert,
    ],
    { stdio: 'ignore' },
  );
}
