/**
 * Config problems in words that lead somewhere: each names its field, an unknown key suggests the
 * known key it was probably meant to be, a missing field says it is required, and a file that is
 * not JSON says where (line, column, the line itself) — without ever printing a token.
 */
import type { z } from 'zod';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly problems: string[],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** Why a file could not be read, for people: "does not exist", "permission denied". */
export function unreadable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'it does not exist';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? (error as Error).message;
}

type Path = readonly PropertyKey[];

/** `triggers[1].command` */
export function fieldPath(path: Path): string {
  return path.reduce<string>(
    (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)),
    '',
  );
}

/**
 * "triggers[1].command: must not be empty" for each problem. Given the raw input and the schema,
 * a missing field reads "is required" and an unknown key names the closest known one.
 */
export function describeZodIssues(error: z.ZodError, raw?: unknown, schema?: z.ZodType): string[] {
  return error.issues.flatMap((issue) => {
    const where = fieldPath(issue.path) || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const known = schema ? objectKeysAt(schema, issue.path) : [];
      return issue.keys.map((key) => {
        const guess = closest(key, known);
        return `${fieldPath([...issue.path, key])}: unknown key${guess ? ` (did you mean "${guess}"?)` : known.length > 0 ? ` (known keys: ${known.join(', ')})` : ''}`;
      });
    }
    if (raw !== undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union') && valueAt(raw, issue.path) === undefined) {
      return [`${where}: is required`];
    }
    return [`${where}: ${issue.message}`];
  });
}

/**
 * How a config (or a token file) is parsed: once at start and at each reload, so without zod's
 * compiled fast path. That path writes and compiles a parser (`new Function`) for every object
 * schema it meets, the first time, and keeps it for as long as the process runs: ~2 MiB of a
 * receiver at rest, for parsers that run again only at the next reload. The answers are the same.
 */
export const PARSED_ONCE = { jitless: true } as const;

/** Validates against a schema; throws the given error, listing every bad field by name. */
export function parseNamingFields<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  source: string,
  makeError: (message: string, problems: string[]) => Error = (message, problems) => new ConfigError(message, problems),
): z.output<S> {
  const result = schema.safeParse(raw, PARSED_ONCE);
  if (!result.success) {
    const problems = describeZodIssues(result.error, raw ?? {}, schema);
    throw makeError(`${source} is not valid:\n  ${problems.join('\n  ')}`, problems);
  }
  return result.data;
}

function valueAt(raw: unknown, path: Path): unknown {
  let value = raw;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  left?: z.ZodType;
  right?: z.ZodType;
  valueType?: z.ZodType;
}

/** The keys an object schema at `path` knows, looking through defaults, unions, arrays and refinements. */
function objectKeysAt(schema: z.ZodType, path: Path): string[] {
  const candidates: z.ZodType[] = [];
  const visit = (node: z.ZodType | undefined, rest: Path): void => {
    if (!node) return;
    const def = (node as unknown as { _zod: { def: ZodDef } })._zod.def;
    switch (def.type) {
      case 'optional':
      case 'default':
      case 'prefault':
      case 'nullable':
      case 'readonly':
      case 'catch':
        return visit(def.innerType, rest);
      case 'pipe':
        return visit(def.in, rest);
      case 'union':
        return def.options?.forEach((option) => visit(option, rest));
      case 'intersection':
        visit(def.left, rest);
        return visit(def.right, rest);
      case 'array':
        return rest.length > 0 ? visit(def.element, rest.slice(1)) : undefined;
      case 'record':
        return rest.length > 0 ? visit(def.valueType, rest.slice(1)) : undefined;
      case 'object':
        if (rest.length === 0) candidates.push(node);
        else visit(def.shape?.[String(rest[0])], rest.slice(1));
        return;
      default:
        return;
    }
  };
  visit(schema, path);
  return [...new Set(candidates.flatMap((node) => Object.keys((node as unknown as { _zod: { def: ZodDef } })._zod.def.shape ?? {})))];
}

/** The known key a mistyped one was most likely meant to be: a small edit away, or the same but for case. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = name.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance <= Math.max(2, Math.floor(name.length / 3)) && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const swap = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? (previous[j - 2] ?? 0) : Number.POSITIVE_INFINITY;
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
        swap === Number.POSITIVE_INFINITY ? swap : swap + 1,
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * JSON with `//` and `/* *\/` comments (as a starter config has), parsed. A syntax error says the
 * line and column and what was expected there, and shows the line unless `showLine` is false (a
 * token file's lines are tokens). The shown line is its structure only: property names, braces,
 * brackets, numbers and true/false/null; every string value reads `"…"` and any other word `…`,
 * since a value on the line may be a token, a webhook URL or a command's secret variable.
 * Comments are not shown either.
 */
export function parseJsonWithComments(text: string, source: string, showLine = true): unknown {
  const stripped = stripComments(text);
  try {
    return JSON.parse(stripped);
  } catch {
    // V8's message quotes the text around the fault, which may hold a secret: the fault is found here instead.
    const fault = syntaxFault(stripped);
    if (!fault || stripped.trim() === '')
      throw new ConfigError(`${source} is not valid JSON${stripped.trim() === '' ? ' (it is empty)' : ''}`, []);
    const before = stripped.slice(0, fault.offset);
    const line = before.split('\n').length;
    const column = fault.offset - before.lastIndexOf('\n');
    const expected = `expected ${fault.expected}`;
    if (!showLine) throw new ConfigError(`${source} is not valid JSON at line ${line}, column ${column}: ${expected}`, []);
    const shown = lineStructure(stripped.split('\n')[line - 1] ?? '', column);
    throw new ConfigError(
      `${source} is not valid JSON at line ${line}, column ${column}:\n    ${shown.text.trimEnd()}\n    ${' '.repeat(shown.caret)}^\n  ${expected}`,
      [],
    );
  }
}

/** Where a text that JSON.parse refused first goes wrong, and what JSON expected there. */
export function syntaxFault(text: string): { offset: number; expected: string } | undefined {
  let i = 0;
  const fault = (expected: string): { offset: number; expected: string } => ({
    offset: i,
    expected: i >= text.length ? `${expected}, but the text ends` : expected,
  });
  const space = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i += 1;
  };
  const string = (): { offset: number; expected: string } | undefined => {
    i += 1;
    while (i < text.length) {
      const char = text[i]!;
      if (char === '"') {
        i += 1;
        return undefined;
      }
      if (char < ' ') return fault('the closing double quote (a string cannot hold a line break or a control character)');
      if (char === '\\') {
        i += 1;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) return fault('four hex digits after \\u');
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x'))
          return fault('an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and four hex digits');
      }
      i += 1;
    }
    return fault('the closing double quote');
  };
  const value = (): { offset: number; expected: string } | undefined => {
    space();
    const char = text[i];
    if (char === '{' || char === '[') {
      const close = char === '{' ? '}' : ']';
      i += 1;
      space();
      if (text[i] === close) {
        i += 1;
        return undefined;
      }
      for (;;) {
        if (char === '{') {
          space();
          if (text[i] !== '"') return fault(`a property name in double quotes`);
          const name = string();
          if (name) return name;
          space();
          if (text[i] !== ':') return fault("':' after the property name");
          i += 1;
        }
        const inner = value();
        if (inner) return inner;
        const valueEnd = i;
        space();
        if (text[i] === ',') i += 1;
        else if (text[i] === close) {
          i += 1;
          return undefined;
        } else {
          // A comma forgotten at the end of a line is missing there, not where the next line starts.
          if (i < text.length && text.slice(valueEnd, i).includes('\n')) i = valueEnd;
          return fault(`',' or '${close}' after ${char === '{' ? 'the property value' : 'the array element'}`);
        }
      }
    }
    if (char === '"') return string();
    const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
    literal.lastIndex = i;
    const match = literal.exec(text);
    if (!match) return fault('a value: a string in double quotes, a number, true, false, null, an object or an array');
    i += match[0].length;
    return undefined;
  };
  const problem = value();
  if (problem) return problem;
  space();
  return i < text.length ? fault('nothing after the end of the JSON value') : undefined;
}

/**
 * A line of a JSON text with its values masked, and where the caret for `column` (1-based) goes
 * in it: a string followed by `:` is a property name and stays; every other string becomes
 * `"…"`; numbers, true, false, null, punctuation and spaces stay; any other word becomes `…`.
 */
function lineStructure(line: string, column: number): { text: string; caret: number } {
  let text = '';
  let caret: number | undefined;
  let i = 0;
  const emit = (piece: string, end: number): void => {
    // Inside a piece kept as it is, the caret keeps its place; inside a masked one, it marks the mask.
    if (caret === undefined && column - 1 < end) caret = text.length + (piece.length === end - i ? column - 1 - i : 0);
    text += piece;
    i = end;
  };
  while (i < line.length) {
    const char = line[i]!;
    if (char === '"') {
      const end = stringEnd(line, i);
      const isName = /^\s*:/.test(line.slice(end)) && line[end - 1] === '"' && end - i >= 2;
      emit(isName ? line.slice(i, end) : '"…"', end);
    } else if (/[\s{}[\]:,]/.test(char)) {
      emit(char, i + 1);
    } else {
      const word = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?(?![^\s{}[\]:,"])|(?:true|false|null)(?![^\s{}[\]:,"])/y;
      word.lastIndex = i;
      const literal = word.exec(line);
      if (literal) emit(literal[0], i + literal[0].length);
      else {
        let end = i;
        while (end < line.length && !/[\s{}[\]:,"]/.test(line[end]!)) end += 1;
        emit('…', end);
      }
    }
  }
  return { text, caret: caret ?? text.length };
}

/** Comments replaced by spaces, so every position (and line) stays where it was. */
function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const char = text[i]!;
    if (char === '"') {
      const end = stringEnd(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (char === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (char === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else {
      out += char;
      i += 1;
    }
  }
  return out;
}

function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text[i] !== '"' && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
  return Math.min(text.length, i + 1);
}
