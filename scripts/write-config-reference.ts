/**
 * Writes `docs/receiver-config.md`, the receiver config's reference, from its zod schema: every
 * field's type, allowed values, default and description come from the schema, so the page cannot
 * drift from what the receiver accepts. `npm run docs:config`; a test fails when the committed
 * page is stale.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { receiverConfigSchema } from '../receiver';

export const CONFIG_REFERENCE_PATH = path.join(__dirname, '..', 'docs', 'receiver-config.md');

/** The part of a draft-7 JSON Schema that zod writes for the receiver config. */
interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
}

/** One row of the reference: a field, where it sits, and what the schema says of it. */
export interface ConfigReferenceField {
  /** `limits.bodyBytes`, `triggers[].deploy.path`. */
  path: string;
  type: string;
  /** The literal default, `required`, or the schema's own words after "Default:". */
  default: string;
  description: string;
}

/** A group of fields that share a parent object: one table on the page. */
interface ConfigReferenceSection {
  path: string;
  description: string;
  fields: ConfigReferenceField[];
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const DEFAULT_SENTENCE = /\s*Default: (.*)$/s;

/** The object whose fields a schema holds (itself, its array items, or the object branch of a union), if any. */
function objectOf(schema: JsonSchema): JsonSchema | undefined {
  if (schema.properties) return schema;
  if (schema.items) return objectOf(schema.items);
  return schema.anyOf?.map(objectOf).find((object) => object !== undefined);
}

/** How a field's path continues into its object: `triggers` holds `triggers[].command`. */
function childPath(fieldPath: string, schema: JsonSchema): string {
  return schema.type === 'array' ? `${fieldPath}[]` : fieldPath;
}

/** The anchor a Markdown renderer (GitHub's) gives the section's heading. */
function anchorOf(sectionPath: string): string {
  return sectionPath
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');
}

function integerRange(schema: JsonSchema): string {
  const low = schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : schema.minimum;
  const high = schema.maximum !== undefined && schema.maximum < MAX_SAFE ? schema.maximum : undefined;
  if (low !== undefined && high !== undefined) return ` ${low}–${high.toLocaleString('en-US')}`;
  if (low !== undefined) return ` ≥ ${low}`;
  return high !== undefined ? ` ≤ ${high.toLocaleString('en-US')}` : '';
}

function countRange(low: number | undefined, high: number | undefined, unit: string): string {
  if (low !== undefined && high !== undefined) return ` (${low}–${high} ${unit})`;
  if (low !== undefined && low > 0) return ` (at least ${low} ${unit.replace(/s$/, low === 1 ? '' : 's')})`;
  return high !== undefined ? ` (at most ${high} ${unit})` : '';
}

/** The type and the values it allows, in a few words. `objects` names the sections already written out. */
function typeOf(schema: JsonSchema, objects: Map<string, string>): string {
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum) return `one of ${schema.enum.map((value) => `\`${JSON.stringify(value)}\``).join(', ')}`;
  if (schema.anyOf) return schema.anyOf.map((branch) => typeOf(branch, objects)).join(', or ');
  switch (schema.type) {
    case 'integer':
      return `integer${integerRange(schema)}`;
    case 'string': {
      if (schema.format === 'uri') return 'URL';
      const length = schema.minLength === 1 && schema.maxLength === undefined ? 'non-empty ' : '';
      const bounds =
        schema.minLength === 1 && schema.maxLength === undefined ? '' : countRange(schema.minLength, schema.maxLength, 'characters');
      return `${length}string${bounds}${schema.pattern ? ` matching \`${schema.pattern}\`` : ''}`;
    }
    case 'array':
      return `array of ${typeOf(schema.items ?? {}, objects)}${countRange(schema.minItems, schema.maxItems, 'items')}`;
    case 'object': {
      if (schema.properties) {
        const section = objects.get(JSON.stringify(schema.properties));
        return section ? `object ([\`${section}\`](#${anchorOf(section)}))` : 'object';
      }
      if (typeof schema.additionalProperties === 'object') {
        const names = schema.propertyNames?.pattern ? ` named \`${schema.propertyNames.pattern}\`` : '';
        return `object of ${typeOf(schema.additionalProperties, objects)}${names}`;
      }
      return 'object';
    }
    default:
      return schema.type ?? 'any';
  }
}

function defaultOf(schema: JsonSchema, required: boolean): { default: string; description: string } {
  const description = schema.description ?? '';
  const sentence = DEFAULT_SENTENCE.exec(description);
  const rest = sentence ? description.slice(0, sentence.index) : description;
  if (required) return { default: 'required', description };
  if (schema.default !== undefined) {
    const literal = JSON.stringify(schema.default);
    // A section whose default is `{}` takes every field's own default.
    const eachField = literal === '{}' && objectOf(schema) !== undefined;
    return { default: eachField ? "each field's default" : `\`${literal}\``, description };
  }
  return { default: sentence ? sentence[1]!.trim().replace(/\.$/, '') : 'none', description: rest };
}

/**
 * The sections of the reference, outermost first: each object of the schema once, in the order
 * its fields appear; an object that repeats another (a trigger's `notify`) links to it.
 */
export function configReferenceSections(): ConfigReferenceSection[] {
  const root = z.toJSONSchema(receiverConfigSchema, { io: 'input', target: 'draft-7' }) as JsonSchema;
  const sections: ConfigReferenceSection[] = [];
  const objects = new Map<string, string>();
  const visit = (sectionPath: string, description: string, object: JsonSchema): void => {
    const section: ConfigReferenceSection = { path: sectionPath, description, fields: [] };
    sections.push(section);
    const nested: [string, string, JsonSchema][] = [];
    for (const [name, field] of Object.entries(object.properties ?? {})) {
      const fieldPath = sectionPath === '' ? name : `${sectionPath}.${name}`;
      const inner = objectOf(field);
      const key = JSON.stringify(inner?.properties);
      if (inner && !objects.has(key)) {
        objects.set(key, childPath(fieldPath, field));
        nested.push([childPath(fieldPath, field), field.description ?? '', inner]);
      }
      const { default: fallback, description: text } = defaultOf(field, object.required?.includes(name) ?? false);
      section.fields.push({ path: fieldPath, type: typeOf(field, objects), default: fallback, description: text });
    }
    for (const [innerPath, innerDescription, inner] of nested) visit(innerPath, innerDescription, inner);
  };
  visit('', root.description ?? '', root);
  return sections;
}

/** Every field of the config, outermost first. */
export function configReferenceFields(): ConfigReferenceField[] {
  return configReferenceSections().flatMap((section) => section.fields);
}

/** A table cell: one line, pipes escaped, and a page the schema names (`docs/operations.md`) linked from this one beside it. */
const cell = (text: string): string =>
  text
    .replace(/\|/g, '\\|')
    .replace(/\n+/g, ' ')
    .replace(/\bdocs\/([a-z-]+\.md)\b/g, '[$1]($1)');

const INTRODUCTION = `# Receiver configuration reference

<!-- Generated by scripts/write-config-reference.ts from receiver/config/schema.ts: run \`npm run docs:config\` after a change; do not edit by hand. -->

The receiver reads one JSON file (\`triggler serve --config receiver.json\`; \`//\` and \`/* */\`
comments allowed), validated at start-up and on every reload. An unknown key or a bad value stops
the receiver with a message naming the field (\`triggers[1].command: must not be empty\`,
\`triggers[0].comand: unknown key (did you mean "command"?)\`, \`triggers: is required\`); a syntax
error shows the line and column. Relative paths are relative to the config file.
\`triggler check --config receiver.json\` runs the same checks without starting anything.

A minimal config, its token file and what each part does are in
[self-hosting.md](self-hosting.md); which fields a reload applies is in
[operations.md](operations.md#reloading). This page lists every field the schema accepts.
`;

/** The page as the file holds it. */
export function configReferenceText(): string {
  const parts = [INTRODUCTION];
  for (const section of configReferenceSections()) {
    parts.push(section.path === '' ? '## Top level\n' : `## ${section.path}\n`);
    if (section.path !== '' && section.description)
      parts.push(`${cell(defaultOf({ description: section.description }, false).description)}\n`);
    parts.push('| field | type | default | description |\n| --- | --- | --- | --- |');
    for (const field of section.fields) {
      parts.push(`| \`${field.path}\` | ${cell(field.type)} | ${cell(field.default)} | ${cell(field.description)} |`);
    }
    parts.push('');
  }
  return `${parts.join('\n').trimEnd()}\n`;
}

if (require.main === module) {
  fs.writeFileSync(CONFIG_REFERENCE_PATH, configReferenceText());
  process.stdout.write(`wrote ${path.relative(process.cwd(), CONFIG_REFERENCE_PATH)}\n`);
}
