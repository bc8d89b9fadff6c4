/** A Lambda Function URL event (payload format 2.0) for a request as a provider sends it. */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export function functionUrlEvent(
  path: string,
  headers: Record<string, string>,
  body: Buffer | string,
  options: { base64?: boolean; method?: string } = {},
): APIGatewayProxyEventV2 {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const method = options.method ?? 'POST';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abcdefghij.lambda-url.eu-west-1.on.aws', 'x-forwarded-proto': 'https', ...headers },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abcdefghij',
      domainName: 'abcdefghij.lambda-url.eu-west-1.on.aws',
      domainPrefix: 'abcdefghij',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '192.30.252.40', userAgent: headers['user-agent'] ?? 'test' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    // Function URLs pass text bodies as they are and base64-encode the others.
    body: options.base64 ? bytes.toString('base64') : bytes.toString('utf8'),
    isBase64Encoded: options.base64 ?? false,
  };
}
