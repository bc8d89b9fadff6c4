/**
 * Construct ids (and so CloudFormation logical ids) derived from names, never from a position in
 * the config: adding, removing or reordering triggers then leaves every other repository's
 * resources exactly as they were, so CloudFormation neither replaces nor renames them.
 */
import { createHash } from 'node:crypto';

/** How many characters of the name's readable form an id keeps (logical ids allow 255 in all). */
const READABLE_LENGTH = 40;

/** Eight hex digits of the SHA-256 of the exact name: what keeps names that read alike apart. */
export function nameHash(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 8);
}

/**
 * A stable id for a name: its letters and digits in PascalCase (readable in the template), then
 * eight hex digits of the SHA-256 of the exact name, so names that read alike (`my-app`, `my.app`,
 * `MyApp`) still get different ids. The same name always gets the same id.
 */
export function idFromName(name: string): string {
  const readable = name
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word !== '')
    .map((word) => word[0]!.toUpperCase() + word.slice(1))
    .join('')
    .slice(0, READABLE_LENGTH);
  return `${readable}${nameHash(name)}`;
}
