/**
 * What a write through the admin listener (a rollback, a re-run) needs beyond reaching the port:
 * the admin credential, a random token in `<stateDir>/admin-token` that only the receiver's user
 * can read (the file is 0600 in a 0700 directory). Loopback alone is not enough: any local user
 * can reach a loopback port, and only the service user (or root) can read the state directory.
 * Reads need no credential.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IncomingMessage } from 'node:http';

export const ADMIN_CREDENTIAL_FILE = 'admin-token';

/** The header a write carries: `Authorization: Bearer <the token in <stateDir>/admin-token>`. */
export function adminAuthorization(credential: string): string {
  return `Bearer ${credential}`;
}

/**
 * The receiver's side: the credential in `stateDir`, created at first start. A file others can
 * read is made private again, since anyone who read it could write through the admin listener.
 */
export function ensureAdminCredential(stateDir: string): string {
  const file = path.join(stateDir, ADMIN_CREDENTIAL_FILE);
  try {
    fs.writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new Error(`cannot create the admin credential ${file}: ${(error as Error).message}`, { cause: error });
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  return readCredential(file);
}

/**
 * The CLI's side: the credential of the receiver whose state directory this is. Reading it needs
 * the receiver's user (or root): that is the permission a write through the admin listener takes.
 */
export function readAdminCredential(stateDir: string): string {
  const file = path.join(stateDir, ADMIN_CREDENTIAL_FILE);
  try {
    return readCredential(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES')
      throw new Error(
        `cannot read the admin credential ${file}: permission denied. Run this as the receiver's user (e.g. sudo -u triggler ...) or as root`,
        { cause: error },
      );
    if (code === 'ENOENT')
      throw new Error(`no admin credential at ${file}: has the receiver with this stateDir started yet?`, { cause: error });
    throw new Error(`cannot read the admin credential ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function readCredential(file: string): string {
  const credential = fs.readFileSync(file, 'utf8').trim();
  if (credential.length < 32)
    throw new Error(`the admin credential ${file} is shorter than 32 characters: delete it and restart the receiver to make a new one`);
  return credential;
}

/** Whether a request carries the credential (compared in constant time). */
export function isAuthorized(req: IncomingMessage, credential: string): boolean {
  const sent = req.headers.authorization;
  if (typeof sent !== 'string') return false;
  const expected = Buffer.from(adminAuthorization(credential));
  const given = Buffer.from(sent);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
