/**
 * Where a trigger's token is found: its name (in a token file, or under a prefix in SSM Parameter
 * Store), and Parameter Store's naming rules (PutParameter): letters, digits, `_ . - /`; at most
 * 1011 characters and 15 levels; the first level must not begin with `aws` or `ssm`. The stack,
 * the receiver, the sender's routes and the CLI all name tokens through these functions.
 */

export const MAX_PARAMETER_NAME_LENGTH = 1011;
export const MAX_PARAMETER_LEVELS = 15;

/** The name a trigger's token is stored under: its own `tokenName`, or `<repository>/<branch>`. */
export function tokenNameOf(trigger: { repository: string; branch: string; tokenName?: string | undefined }): string {
  return trigger.tokenName ?? `${trigger.repository}/${trigger.branch}`;
}

/**
 * The default token prefix of a stack: `/<stack name in kebab case>/tokens`. Stacks in one account
 * then never share (and never delete) each other's tokens.
 */
export function defaultTokenPrefix(stackName: string): string {
  const kebab = stackName
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase()
    .replace(/-+/g, '-')
    .replace(/-$/, '');
  return `/${kebab}/tokens`;
}

/** `<prefix>/<tokenName>`: the SecureString that holds a token. */
export function tokenParameterName(prefix: string, tokenName: string): string {
  return `${prefix}/${tokenName}`;
}

export function parameterNameProblem(name: string): string | undefined {
  if (!name.startsWith('/')) return `the SSM parameter name ${name} must start with "/"`;
  if (name.length > MAX_PARAMETER_NAME_LENGTH) {
    return `the SSM parameter name ${name.slice(0, 40)}... has ${name.length} characters; SSM allows ${MAX_PARAMETER_NAME_LENGTH}`;
  }
  if (!/^[A-Za-z0-9_.\-/]+$/.test(name)) {
    return `the SSM parameter name ${name} may hold only letters, digits and _ . - /`;
  }
  const levels = name.slice(1).split('/');
  if (levels.some((level) => level === '')) return `the SSM parameter name ${name} must not have an empty level ("//" or a trailing "/")`;
  if (levels.length > MAX_PARAMETER_LEVELS) {
    return `the SSM parameter name ${name} has ${levels.length} levels; SSM allows ${MAX_PARAMETER_LEVELS}`;
  }
  if (/^(aws|ssm)/i.test(levels[0] ?? '')) return `the SSM parameter name ${name} must not begin with "aws" or "ssm" (reserved by AWS)`;
  return undefined;
}
