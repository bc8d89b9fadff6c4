/** What the stack's custom-resource handlers (tokens, deploy keys, CodeCommit triggers) share. */
import { z } from 'zod';

/** What a handler returns to the Provider framework. */
export interface ProviderResponse {
  PhysicalResourceId: string;
  Data?: Record<string, string>;
}

/**
 * Validates a resource's properties; the error names each bad field under `which`
 * (`ResourceProperties.Names.0: ...`), never its value.
 */
export function readResourceProperties<S extends z.ZodType>(schema: S, raw: unknown, which: string, resource: string): z.output<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${which}.${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`the ${resource} resource's properties are not valid: ${problems.join('; ')}`);
  }
  return result.data;
}

/** An AWS SDK error's name (ParameterNotFound, RepositoryDoesNotExistException, ...). */
export { awsErrorName as errorName } from '../protocol';

/** An SSM parameter name or path: starts with "/", does not end with one. */
export const parameterPathSchema = z.string().regex(/^\/[A-Za-z0-9_.\-/]*[^/]$/, 'must start with / and not end with /');

/** CloudFormation hands every scalar property over as a string. */
export const booleanPropertySchema = z.enum(['true', 'false']).transform((value) => value === 'true');
