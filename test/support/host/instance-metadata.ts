/**
 * An instance metadata service (IMDSv2) for the host test: on 169.254.169.254:80, as on EC2, it
 * hands out a session token and an instance profile's credentials, which the receiver's SSM client
 * takes when no others are set, and records every request it receives. The address is put on this
 * machine's loopback for the test's lifetime: the guest shares this machine's network namespace, so
 * the guest's processes reach it exactly where they would reach the real one.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';

export const METADATA_ADDRESS = '169.254.169.254';
export const ROLE_NAME = 'host-test-receiver-role';

export interface MetadataRequest {
  method: string;
  path: string;
  userAgent: string;
}

export interface InstanceMetadata {
  /** The access key id it hands out (never a secret of a real account). */
  accessKeyId: string;
  /** Every request so far, in order. */
  requests: MetadataRequest[];
  close(): Promise<void>;
}

function ip(args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr}`);
}

export async function startInstanceMetadata(): Promise<InstanceMetadata> {
  const accessKeyId = `ASIAHOSTTEST${randomBytes(4).toString('hex').toUpperCase()}`;
  const sessionToken = randomBytes(24).toString('base64');
  const requests: MetadataRequest[] = [];
  const server = http.createServer((request, response) => {
    const path = request.url ?? '';
    requests.push({ method: request.method ?? '', path, userAgent: String(request.headers['user-agent'] ?? '') });
    const answer = (status: number, body: string) => response.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    if (request.method === 'PUT' && path === '/latest/api/token') {
      if (!request.headers['x-aws-ec2-metadata-token-ttl-seconds']) return answer(400, 'a token TTL is required');
      return answer(200, sessionToken);
    }
    // IMDSv2 only, as the stack requires of the instance (requireImdsv2).
    if (request.headers['x-aws-ec2-metadata-token'] !== sessionToken) return answer(401, 'unauthorized');
    if (path === '/latest/meta-data/iam/security-credentials/') return answer(200, ROLE_NAME);
    if (path === `/latest/meta-data/iam/security-credentials/${ROLE_NAME}`) {
      const now = Date.now();
      return answer(
        200,
        JSON.stringify({
          Code: 'Success',
          LastUpdated: new Date(now).toISOString(),
          Type: 'AWS-HMAC',
          AccessKeyId: accessKeyId,
          SecretAccessKey: randomBytes(30).toString('base64'),
          Token: randomBytes(60).toString('base64'),
          Expiration: new Date(now + 6 * 3600 * 1000).toISOString(),
        }),
      );
    }
    return answer(404, 'not found');
  });
  // `replace`: an address a killed run left behind is taken over, not an error.
  ip(['addr', 'replace', `${METADATA_ADDRESS}/32`, 'dev', 'lo']);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(80, METADATA_ADDRESS, resolve);
    });
  } catch (error) {
    ip(['addr', 'del', `${METADATA_ADDRESS}/32`, 'dev', 'lo']);
    throw error;
  }
  return {
    accessKeyId,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      ip(['addr', 'del', `${METADATA_ADDRESS}/32`, 'dev', 'lo']);
    },
  };
}
