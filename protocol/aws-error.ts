/**
 * How an AWS SDK error is named and described wherever one is logged or shown: its name (the
 * service's error code) and its message. AWS error messages name resources and actions, never
 * parameter values, so the description is safe to log.
 */

/** The error's name (`ParameterNotFound`, `RepositoryDoesNotExistException`, ...), or undefined. */
export function awsErrorName(error: unknown): string | undefined {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/**
 * "AccessDeniedException: User ... is not authorized ...", or the name alone when the message adds
 * nothing; "error: <message>" for an error without a name of its own (a network error, say). On
 * one line, cut at `maxLength` characters.
 */
export function describeAwsError(error: unknown, maxLength = 300): string {
  const name = awsErrorName(error);
  const code = name !== undefined && name !== 'Error' ? name : 'error';
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : error;
  const text = typeof message === 'string' && message !== '' && message !== 'UnknownError' && message !== code ? message : undefined;
  const reason = (text === undefined ? code : text.startsWith(code) ? text : `${code}: ${text}`).replace(/\s+/g, ' ');
  return reason.length > maxLength ? `${reason.slice(0, maxLength)}...` : reason;
}
