/**
 * A Lambda handler run on this machine as it ships, for tests and benches that run it without a
 * whole synth or an AWS account: the entry bundled as `BundledNodeFunction` bundles it for the
 * stack (esbuild, CJS, node24, minified, keep-names, the AWS SDK inside from its ES build), the
 * environment that points its SDK at the local SSM endpoint (scripts/local-ssm.ts), and a Function
 * URL event as Lambda hands one to it.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { build, type BuildOptions } from 'esbuild';

const REPOSITORY_ROOT = join(__dirname, '..');

/** Bundles `lambda/<name>.ts` into `outfile` (with `overrides`, for comparisons); returns its size in bytes. */
export async function bundleLambda(name: string, outfile: string, overrides: BuildOptions = {}): Promise<number> {
  await build({
    entryPoints: [join(REPOSITORY_ROOT, 'lambda', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    minify: true,
    keepNames: true,
    mainFields: ['module', 'main'],
    logLevel: 'error',
    ...overrides,
  });
  return readFileSync(outfile).length;
}

/**
 * The environment of a Lambda process whose SDK talks to the local SSM endpoint and to nothing of
 * this machine's own AWS set-up (no profile, no credentials file, no instance metadata).
 */
export function localSsmEnvironment(ssmUrl: string, dir: string, region: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    // The SDK warns that this machine's Node.js nears its end of support; Lambda runs Node.js 24.
    NODE_NO_WARNINGS: '1',
    AWS_ENDPOINT_URL_SSM: ssmUrl,
    AWS_ACCESS_KEY_ID: 'AKIDLOCALLAMBDA',
    AWS_SECRET_ACCESS_KEY: 'local-lambda-secret',
    AWS_REGION: region,
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** A Lambda Function URL event (payload format 2.0) for a request as a provider sends it. */
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
