/**
 * The account a trigger's command runs as. Node has no getpwnam, and the receiver ships without
 * native modules, so the local account database (/etc/passwd) is read directly; accounts that only
 * exist in LDAP or another NSS source are not found.
 */
import { readFile } from 'node:fs/promises';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

const idPattern = /^\d+$/;

/**
 * Accounts by name, from the text of a passwd(5) file. Lines that are not seven fields with numeric
 * ids (comments, NIS `+` lines) are ignored; the first line for a name wins, as with getpwnam.
 */
export function parsePasswd(text: string): Map<string, PasswdEntry> {
  const accounts = new Map<string, PasswdEntry>();
  for (const line of text.split('\n')) {
    const fields = line.replace(/\r$/, '').split(':');
    if (fields.length !== 7) continue;
    const [name, , uid, gid, , home, shell] = fields as [string, string, string, string, string, string, string];
    if (name === '' || !idPattern.test(uid) || !idPattern.test(gid) || accounts.has(name)) continue;
    accounts.set(name, { name, uid: Number(uid), gid: Number(gid), home, shell });
  }
  return accounts;
}

export async function lookupPasswdUser(name: string, passwdPath = '/etc/passwd'): Promise<PasswdEntry | undefined> {
  return parsePasswd(await readFile(passwdPath, 'utf8')).get(name);
}
