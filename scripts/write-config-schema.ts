/**
 * Writes `triggler.config.schema.json` (the JSON Schema editors use for `triggler.config.json`)
 * from the stack config's zod schema. `npx tsx scripts/write-config-schema.ts`; a test fails when
 * the committed file is stale.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { stackConfigSchema } from '../lib/stack-config/schema';

export const CONFIG_SCHEMA_PATH = path.join(__dirname, '..', 'triggler.config.schema.json');

/** The schema as the file holds it: the input side (defaults shown, fields with defaults optional). */
export function configJsonSchemaText(): string {
  const schema = z.toJSONSchema(stackConfigSchema, { io: 'input', target: 'draft-7' });
  return `${JSON.stringify({ ...schema, title: 'git-triggler stack config' }, null, 2)}\n`;
}

if (require.main === module) {
  fs.writeFileSync(CONFIG_SCHEMA_PATH, configJsonSchemaText());
  process.stdout.write(`wrote ${path.relative(process.cwd(), CONFIG_SCHEMA_PATH)}\n`);
}
