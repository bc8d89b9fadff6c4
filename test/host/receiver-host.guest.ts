/**
 * The receiver host under real systemd: a Debian 12 guest with systemd 252 as PID 1
 * (systemd-guest.ts), laid down from the synthesized stack template's own
 * AWS::CloudFormation::Init metadata (cfn-init.ts): its files (the unit byte for byte), its
 * commands (the service user, daemon-reload, the /healthz wait) and its services, read from the
 * template, not written again here. Tokens come from a local SSM endpoint on this machine.
 *
 * What stands in for Amazon Linux 2023, and only that, is put in place here: Node.js 22 at
 * /usr/bin/node-22 (the `nodejs22` package the metadata lists, which the interpreter skips), no-op
 * stand-ins for aws-cfn-bootstrap's cfn-signal (it records its arguments) and cfn-hup, a drop-in
 * pointing the receiver's SSM client at the local endpoint, and an instance metadata service on
 * 169.254.169.254 (instance-metadata.ts) that hands the receiver an instance profile's
 * credentials, as on EC2; the commands, each in its own instance of the command runner's unit,
 * must not reach it. A deploy over SSH fetches from a real sshd on this machine
 * (the guest shares its network), with a deploy key put into the local SSM where the stack's
 * generator would write it.
 *
 * Run with `npm run test:host` (root, systemd-nspawn and debootstrap needed; it skips otherwise).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildDeliveryRequest } from '../../protocol/delivery-request';
import { newToken } from '../../protocol/token';
import type { RunRecord } from '../../receiver/runs/run-record';
import { freePort } from '../support/cli';
import { sshdMissing, sshKeygen, startSshd, type Sshd } from '../support/sshd';
import { sourceRepo, type SourceRepo } from '../support/git-repo';
import type { StackConfig } from '../../lib/stack-config/schema';
import { configOf, trigglerApp, type Template } from '../support/stack-fixture';
import { startLocalSsm, type LocalSsm } from '../../scripts/local-ssm';
import { CfnInitError, initMetadataOf, runCfnInit, type CfnInitReport } from '../support/host/cfn-init';
import { SystemdGuest, ensureNode, ensureRootfs, hostTestUnavailable } from '../support/host/systemd-guest';
import { METADATA_ADDRESS, ROLE_NAME, startInstanceMetadata, type InstanceMetadata } from '../support/host/instance-metadata';

const REPOSITORY_ROOT = path.join(__dirname, '..', '..');
const UNIT_SOURCE = path.join(REPOSITORY_ROOT, 'lib', 'host-files', 'triggler-receiver.service');
const REGION = 'eu-west-1';
const STACK_NAME = 'HostTest';
const SIGNAL_URL = 'https://cloudformation-waitcondition-eu-west-1.s3.amazonaws.com/host-test-handle';
const SIGNAL_LOG = '/var/log/cfn-signal.calls';

const unavailable = hostTestUnavailable() ?? sshdMissing();
if (unavailable) process.stderr.write(`host test skipped: ${unavailable}\n`);
const describeOnHost = unavailable ? describe.skip : describe;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const commit = () => randomBytes(20).toString('hex');

describeOnHost("the receiver host under systemd, laid down from the template's cfn-init metadata", () => {
  let scratch: string;
  let ssm: LocalSsm;
  let metadata: InstanceMetadata;
  let guest: SystemdGuest | undefined;
  let report: CfnInitReport;
  let port: number;
  let adminPort: number;
  let sshd: Sshd;
  let site: SourceRepo;
  const tokens: Record<string, string> = {};
  const timings: string[] = [];

  async function receiverPid(): Promise<number> {
    const pid = Number((await guest!.sh('systemctl show --property MainPID --value triggler-receiver')).trim());
    if (!pid) throw new Error('triggler-receiver has no main process');
    return pid;
  }

  /** The receiver's answer, `<status> <body>`, so a refusal shows its reason. */
  async function deliver(branch: string, sha: string, repository = 'app'): Promise<string> {
    const request = buildDeliveryRequest({
      scheme: 'standard',
      token: tokens[`${repository}/${branch}`]!,
      id: `msg_${sha.slice(0, 16)}`,
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository, branch, ref: `refs/heads/${branch}`, commit: sha, source: 'host-test' },
    });
    const response = await fetch(`http://127.0.0.1:${port}${request.path}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    return `${response.status} ${await response.text()}`;
  }

  async function runs(): Promise<RunRecord[]> {
    const response = await fetch(`http://127.0.0.1:${adminPort}/runs?limit=100`);
    return ((await response.json()) as { runs: RunRecord[] }).runs;
  }

  function finishedRunWith(sha: string): Promise<RunRecord> {
    return until(`a finished run carrying ${sha}`, async () =>
      (await runs()).find((run) => run.commits.includes(sha) && !['pending', 'running'].includes(run.status)),
    );
  }

  async function healthy(): Promise<true> {
    return until('the receiver to answer /healthz', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined));
  }

  /** A template as the stack synthesizes it, bundles included, and the ids the host test needs from it. */
  interface HostTemplate {
    template: Template;
    outdir: string;
    instanceId: string;
    handleId: string;
  }

  function synthesize(config: StackConfig, name: string): HostTemplate {
    const outdir = path.join(scratch, `cdk.out.${name}`);
    const { app } = trigglerApp(config, { bundling: true, outdir });
    app.synth();
    const template = JSON.parse(fs.readFileSync(path.join(outdir, `${STACK_NAME}.template.json`), 'utf8')) as Template;
    const instanceId = Object.keys(template.Resources).find((id) => template.Resources[id]!.Type === 'AWS::EC2::Instance')!;
    const handleId = Object.keys(template.Resources).find(
      (id) => template.Resources[id]!.Type === 'AWS::CloudFormation::WaitConditionHandle',
    )!;
    return { template, outdir, instanceId, handleId };
  }

  /** The signal URL of a template's wait condition handle (each deploy of a new host revision has its own). */
  const signalUrlOf = (host: HostTemplate) => `${SIGNAL_URL}/${host.handleId}`;

  /** What cfn-init (first boot) or cfn-hup (each update) does on the host with a template's metadata. */
  function applyOnHost(host: HostTemplate, metadata = initMetadataOf(host.template, host.instanceId)): Promise<CfnInitReport> {
    return runCfnInit(metadata, 'default', guest!, {
      refs: {
        'AWS::Region': REGION,
        'AWS::StackName': STACK_NAME,
        'AWS::StackId': `arn:aws:cloudformation:${REGION}:123456789012:stack/${STACK_NAME}/00000000-0000-0000-0000-000000000000`,
        'AWS::AccountId': '123456789012',
        'AWS::Partition': 'aws',
        'AWS::URLSuffix': 'amazonaws.com',
        [host.handleId]: signalUrlOf(host),
      },
      sourceDir: (url) => {
        const dir = path.join(host.outdir, `asset.${path.basename(url, '.zip')}`);
        if (!fs.existsSync(dir)) throw new Error(`no staged asset for ${url}`);
        return dir;
      },
    });
  }

  let config: StackConfig;
  let first: HostTemplate;

  beforeAll(async () => {
    const started = Date.now();
    const rootfs = ensureRootfs();
    const node = ensureNode();
    timings.push(`guest rootfs ${rootfs.built ? 'built' : 'cached'} and Node.js ready: ${Date.now() - started} ms`);

    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-host-test-'));
    [port, adminPort] = [await freePort(), await freePort()];
    ssm = await startLocalSsm({ region: REGION });
    metadata = await startInstanceMetadata();
    for (const name of ['app/main', 'app/slow', 'app/restart', 'app/denied', 'app/imds', 'app/nested', 'site/main']) {
      tokens[name] = newToken();
      ssm.put(`/host-test/tokens/${name}`, tokens[name]);
    }
    // A private repository over SSH: a real sshd here, the deploy key where the stack would put it.
    sshd = await startSshd(path.join(scratch, 'sshd'));
    fs.mkdirSync(path.join(scratch, 'site'));
    site = sourceRepo(path.join(scratch, 'site'));
    const deployKey = sshKeygen(scratch, 'site_deploy_key');
    sshd.authorize(deployKey.publicKey);
    ssm.put('/host-test/tokens/deploy-keys/site', deployKey.privateKey);

    const synthStarted = Date.now();
    config = configOf({
      stackName: STACK_NAME,
      triggers: [
        {
          repository: 'app',
          branch: 'main',
          createRepository: true,
          cwd: '/srv/app',
          // What a command may do under the unit's hardening: who it runs as, its own seccomp and
          // capabilities, whether it can write its writable path and /etc.
          command: [
            'id -un > /srv/app/ran-as',
            'grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/self/status > /srv/app/status',
            'if touch /etc/triggler-probe 2>/dev/null; then echo yes; else echo no; fi > /srv/app/etc-writable',
            'echo "$TRIGGLER_COMMIT" >> /srv/app/main.log',
          ].join('; '),
        },
        { repository: 'app', branch: 'slow', createRepository: true, command: 'sleep 3; echo "$TRIGGLER_COMMIT" >> /srv/app/slow.log' },
        // Pushed code reaching for the instance's credentials: instance metadata (which must not
        // answer), and, to show the network itself works for it, the local SSM endpoint.
        {
          repository: 'app',
          branch: 'imds',
          createRepository: true,
          command: [
            'cat /proc/self/cgroup > /srv/app/imds-cgroup',
            `curl -sS -o /dev/null --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" -A command-probe http://${METADATA_ADDRESS}/latest/api/token; echo $? > /srv/app/imds-exit`,
            `curl -s -o /dev/null -w "%{http_code}" --max-time 5 -A command-probe ${ssm.url}/ > /srv/app/ssm-status`,
          ].join('; '),
        },
        // A command that asks the runner's socket itself for a command of its own (the script is
        // written by the test below).
        { repository: 'app', branch: 'nested', createRepository: true, command: ['/usr/bin/node-22', '/srv/app/nested-runner.js'] },
        // receiver.manageUnits: systemctl, without sudo, on a unit the config names and on one it does not.
        { repository: 'app', branch: 'restart', createRepository: true, command: 'systemctl restart host-test-app.service' },
        // Through sh, which synth's check of the commands does not read: the host must refuse it itself.
        { repository: 'app', branch: 'denied', createRepository: true, command: ['/bin/sh', '-c', 'systemctl restart cfn-hup.service'] },
        {
          repository: 'site',
          branch: 'main',
          source: 'webhook',
          command: 'cat index.html > built.html',
          deploy: { repositoryUrl: sshd.url(site.url), path: '/srv/site', knownHosts: [sshd.knownHostsLine] },
        },
      ],
      receiver: { port, adminPort, writablePaths: ['/srv/app'], manageUnits: ['host-test-app.service'] },
      tokens: { prefix: '/host-test/tokens' },
    });
    first = synthesize(config, 'first');
    timings.push(`synth with bundling: ${Date.now() - synthStarted} ms`);

    const bootStarted = Date.now();
    guest = await SystemdGuest.boot(rootfs.dir);
    timings.push(`guest boot: ${Date.now() - bootStarted} ms`);

    // What Amazon Linux 2023 and aws-cfn-bootstrap would provide.
    await guest.sh('cat > /usr/bin/node-22 && chmod 0755 /usr/bin/node-22', fs.readFileSync(node));
    await guest.writeFile('/opt/aws/bin/cfn-signal', `#!/bin/sh\nprintf '%s\\n' "$*" >> ${SIGNAL_LOG}\n`, '0755', 'root', 'root');
    await guest.writeFile('/opt/aws/bin/cfn-hup', '#!/bin/sh\nexec sleep infinity\n', '0755', 'root', 'root');
    await guest.writeFile(
      '/etc/systemd/system/triggler-receiver.service.d/90-local-ssm.conf',
      // No credentials here: the receiver's SDK takes the instance profile's from instance metadata.
      `[Service]\nEnvironment=AWS_ENDPOINT_URL_SSM=${ssm.url}\n`,
      '0644',
      'root',
      'root',
    );

    const initStarted = Date.now();
    report = await applyOnHost(first);
    timings.push(`cfn-init from the metadata (including the /healthz wait): ${Date.now() - initStarted} ms`);

    // The operator's part (docs/deploy.md): the writable path exists and belongs to the service
    // user; a path missing at start is skipped by ReadWritePaths, so the service restarts. And the
    // service a deploy restarts (receiver.manageUnits).
    await guest.writeFile(
      '/etc/systemd/system/host-test-app.service',
      '[Service]\nExecStart=/bin/sleep infinity\n',
      '0644',
      'root',
      'root',
    );
    await guest.sh(
      'mkdir -p /srv/app && chown triggler:triggler /srv/app && systemctl daemon-reload && systemctl start host-test-app && systemctl restart triggler-receiver',
    );
    await healthy();
    timings.push(`ready: ${Date.now() - started} ms`);
  }, 900_000);

  afterAll(async () => {
    await guest?.powerOff();
    await sshd?.close();
    await ssm?.close();
    await metadata?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    process.stderr.write(`host test timings:\n  ${timings.join('\n  ')}\n`);
  }, 60_000);

  test('cfn-init skipped only the Amazon Linux package installs and wrote the unit byte for byte, which systemd accepts', async () => {
    // The guest's root file system has Debian's git and ssh client in their place.
    expect(report.skippedPackages).toEqual(['yum: nodejs22', 'yum: git', 'yum: openssh-clients', 'yum: polkit']);
    expect(report.commands.map((c) => `${c.config}/${c.key}`)).toEqual([
      'revision/10-save',
      'system/10-service-user',
      'system/20-deploy-paths',
      'system/30-ptrace-scope',
      'receiver/10-daemon-reload',
      'receiver/20-command-socket',
      'health/10-wait-healthy',
    ]);
    expect(await guest!.readFile('/etc/systemd/system/triggler-receiver.service')).toBe(fs.readFileSync(UNIT_SOURCE, 'utf8'));
    expect(await guest!.sh('stat -c "%U:%G %a" /etc/triggler/receiver.json /etc/triggler/receiver.env')).toBe(
      'root:triggler 640\nroot:triggler 640\n',
    );
    const verify = await guest!.run(['systemd-analyze', 'verify', 'triggler-receiver.service', 'triggler-command.socket']);
    expect({ code: verify.code, stderr: verify.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await guest!.sh('systemctl is-enabled triggler-receiver cfn-hup triggler-command.socket')).toBe('enabled\nenabled\nenabled\n');
    expect(await guest!.sh('systemctl is-active triggler-command.socket')).toBe('active\n');
    expect(await guest!.sh('stat -c "%U:%G %a" /run/triggler/command.sock')).toBe('triggler:triggler 600\n');
  });

  test('the health step waited for /healthz and signalled success', async () => {
    const wait = report.commands.find((c) => c.key === '10-wait-healthy')!;
    expect(wait.result.code).toBe(0);
    expect(await guest!.readFile(SIGNAL_LOG)).toBe(`-e 0 --reason the receiver answers /healthz on port ${port} ${signalUrlOf(first)}\n`);
  });

  test("the receiver runs as triggler under the unit's hardening (seccomp filter, no new privileges, no capabilities)", async () => {
    const pid = await receiverPid();
    const status = await guest!.readFile(`/proc/${pid}/status`);
    const uid = (await guest!.sh('id -u triggler')).trim();
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'));
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^CapEff:\s+0{16}$/m);
    // ProtectSystem=strict: in the service's view, / is mounted read-only.
    const mounts = await guest!.readFile(`/proc/${pid}/mountinfo`);
    const root = mounts.split('\n').find((line) => line.split(' ')[4] === '/');
    expect(root?.split(' ')[5]?.split(',')).toContain('ro');
  });

  test('a signed delivery runs its command, which may write its writable path and not /etc', async () => {
    const sha = commit();
    expect(await deliver('main', sha)).toMatch(/^202 /);
    expect(await finishedRunWith(sha)).toMatchObject({ status: 'succeeded' });
    expect(await guest!.readFile('/srv/app/ran-as')).toBe('triggler\n');
    const status = await guest!.readFile('/srv/app/status');
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^CapEff:\s+0{16}$/m);
    expect(await guest!.readFile('/srv/app/etc-writable')).toBe('no\n');
    expect(await guest!.readFile('/srv/app/main.log')).toContain(`${sha}\n`);
    expect((await guest!.run(['test', '-e', '/etc/triggler-probe'])).code).not.toBe(0);
  });

  test("a command cannot reach instance metadata, in its runner's unit, while the receiver takes its credentials from it", async () => {
    // The receiver verified deliveries with tokens it read from SSM, signed with the instance
    // profile's credentials that only instance metadata hands out here.
    expect(ssm.calls.GetParameter).toBeGreaterThan(0);
    // (The command below only asks for a session token, and names itself.)
    expect(metadata.requests.map((request) => request.path)).toContain(`/latest/meta-data/iam/security-credentials/${ROLE_NAME}`);

    const sha = commit();
    expect(await deliver('imds', sha)).toMatch(/^202 /);
    expect(await finishedRunWith(sha)).toMatchObject({ status: 'succeeded' });
    // The command ran in an instance of the runner's unit, not in the receiver's.
    expect(await guest!.readFile('/srv/app/imds-cgroup')).toMatch(/triggler-command@[^/]*\.service/);
    // Instance metadata never answered it (curl: 28, timed out; the firewall drops the packets)...
    expect((await guest!.readFile('/srv/app/imds-exit')).trim()).toMatch(/^(7|28)$/);
    expect(metadata.requests.filter((request) => request.userAgent.includes('command-probe'))).toEqual([]);
    // ...while anything else on the network did.
    expect((await guest!.readFile('/srv/app/ssm-status')).trim()).toMatch(/^[1-5]\d\d$/);
  }, 60_000);

  test("a command that asks the runner's socket for a command of its own gets only another instance that cannot reach it", async () => {
    // The runner's protocol by hand (receiver/runs/command-frames.ts): a spec frame, then output
    // frames until the output ends.
    const script = `
      const net = require('node:net');
      const fs = require('node:fs');
      const probe = 'curl -sS -o /dev/null --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" -A nested-probe http://${METADATA_ADDRESS}/latest/api/token; echo "exit $?"; cat /proc/self/cgroup';
      const spec = { program: '/bin/sh', args: ['-c', probe], cwd: '/', env: { PATH: '/usr/bin:/bin' }, runId: 'nested', killGraceMs: 1000 };
      const payload = Buffer.from(JSON.stringify({ spec }));
      const header = Buffer.alloc(5);
      header.writeUInt8(0x01, 0);
      header.writeUInt32BE(payload.length, 1);
      const socket = net.createConnection('/run/triggler/command.sock', () => socket.write(Buffer.concat([header, payload])));
      let received = Buffer.alloc(0);
      let output = '';
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        while (received.length >= 5 && received.length >= 5 + received.readUInt32BE(1)) {
          const kind = received.readUInt8(0);
          const body = received.subarray(5, 5 + received.readUInt32BE(1));
          received = received.subarray(5 + body.length);
          if (kind === 0x13) output += body.toString();
          if (kind === 0x15) {
            fs.writeFileSync('/srv/app/nested.out', output);
            socket.end();
          }
        }
      });
    `;
    await guest!.writeFile('/srv/app/nested-runner.js', script, '0644', 'triggler', 'triggler');
    const sha = commit();
    expect(await deliver('nested', sha)).toMatch(/^202 /);
    expect(await finishedRunWith(sha)).toMatchObject({ status: 'succeeded' });
    const nested = await guest!.readFile('/srv/app/nested.out');
    expect(nested).toMatch(/^exit (7|28)$/m);
    expect(nested).toMatch(/triggler-command@[^/]*\.service/);
    expect(metadata.requests.filter((request) => request.userAgent.includes('nested-probe'))).toEqual([]);
  }, 60_000);

  test("a deploy over SSH fetches a private repository with its deploy key under the unit's hardening, and leaves no key file", async () => {
    const sha = site.commit({ 'index.html': 'private site' });
    expect(await deliver('main', sha, 'site')).toMatch(/^202 /);
    const run = await finishedRunWith(sha);
    expect(run).toMatchObject({ status: 'succeeded', deploy: { commit: sha } });
    expect(await guest!.readFile('/srv/site/current/built.html')).toBe('private site');
    expect(await guest!.sh('stat -c %U /srv/site/repo.git /srv/site/current/built.html')).toBe('triggler\ntriggler\n');
    expect(sshd.log()).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1/);
    expect(await guest!.sh('ls -A /var/lib/triggler/ssh')).toBe('');
    // The CLI the stack puts on the host's PATH, as the service user (docs/deploy.md).
    const releases = await guest!.sh('runuser -u triggler -- triggler releases site main --config /etc/triggler/receiver.json');
    expect(releases).toContain(run.deploy!.release!);
    expect(releases).toContain(sha.slice(0, 12));
    expect(await guest!.sh('runuser -u triggler -- triggler runs --config /etc/triggler/receiver.json')).toContain(run.id);
  });

  test('a command restarts a unit receiver.manageUnits names with systemctl, no sudo, and no other unit', async () => {
    const appPid = async () => Number((await guest!.sh('systemctl show --property MainPID --value host-test-app')).trim());
    const before = await appPid();
    expect(before).toBeGreaterThan(0);
    const allowed = commit();
    expect(await deliver('restart', allowed)).toMatch(/^202 /);
    expect(await finishedRunWith(allowed)).toMatchObject({ status: 'succeeded' });
    expect(await appPid()).not.toBe(before);

    const cfnHup = (await guest!.sh('systemctl show --property MainPID --value cfn-hup')).trim();
    const denied = commit();
    expect(await deliver('denied', denied)).toMatch(/^202 /);
    const run = await finishedRunWith(denied);
    expect(run.status).toBe('failed');
    const log = await (await fetch(`http://127.0.0.1:${adminPort}/runs/${run.id}/log`)).text();
    expect(log).toMatch(/Access denied|Interactive authentication required/);
    expect((await guest!.sh('systemctl show --property MainPID --value cfn-hup')).trim()).toBe(cfnHup);
  }, 60_000);

  test('systemctl reload keeps the process and its accepted deliveries', async () => {
    const pid = await receiverPid();
    const sha = commit();
    expect(await deliver('slow', sha)).toMatch(/^202 /);
    await guest!.sh('systemctl reload triggler-receiver');
    expect(await finishedRunWith(sha)).toMatchObject({ status: 'succeeded' });
    expect(await receiverPid()).toBe(pid);
    expect(await guest!.readFile('/srv/app/slow.log')).toContain(`${sha}\n`);
  }, 60_000);

  test('systemctl restart keeps accepted deliveries: the running one finishes, the waiting one runs after the restart', async () => {
    const pid = await receiverPid();
    const [running, waiting] = [commit(), commit()];
    expect(await deliver('slow', running)).toMatch(/^202 /);
    await until('the first run to start', async () =>
      (await runs()).find((run) => run.commits.includes(running))?.status === 'running' ? true : undefined,
    );
    expect(await deliver('slow', waiting)).toMatch(/^202 /);
    await guest!.sh('systemctl restart triggler-receiver');
    expect(await receiverPid()).not.toBe(pid);
    await healthy();
    expect(await finishedRunWith(running)).toMatchObject({ status: 'succeeded' });
    expect(await finishedRunWith(waiting)).toMatchObject({ status: 'succeeded' });
    const log = await guest!.readFile('/srv/app/slow.log');
    expect(log).toContain(`${running}\n`);
    expect(log).toContain(`${waiting}\n`);
  }, 90_000);

  test('a receiver that cannot start fails the health step, with a reason for the stack events', async () => {
    await guest!.sh(
      'systemctl stop triggler-receiver && mv /usr/bin/node-22 /usr/bin/node-22.away && systemctl start triggler-receiver || true',
    );
    try {
      // The template's health command, with a 5 s wait instead of its 120 s.
      const wait = report.commands.find((c) => c.key === '10-wait-healthy')!;
      expect(wait).toBeDefined();
      const result = await guest!.run(['/usr/local/sbin/triggler-wait-healthy', String(port), '5', signalUrlOf(first)]);
      expect(result.code).toBe(1);
      const last = (await guest!.readFile(SIGNAL_LOG)).trim().split('\n').at(-1)!;
      expect(last).toMatch(
        new RegExp(
          `^-e 1 --reason the receiver did not answer /healthz on port ${port} within 5 s \\(triggler-receiver is (activating|failed|inactive)\\): .+ ${signalUrlOf(first).replace(/\./g, '\\.')}$`,
        ),
      );
      // systemd's own words on why it could not start the receiver, not its restart-loop lines.
      expect(last).toMatch(/node-22/);
      expect(last).not.toMatch(/Scheduled restart job|Started triggler-receiver/);
    } finally {
      await guest!.sh('mv /usr/bin/node-22.away /usr/bin/node-22 && systemctl restart triggler-receiver');
      await healthy();
    }
  }, 60_000);
  test('an update the receiver serves is applied and signalled; one it cannot start on ends on the previous version, serving, and fails with the reason', async () => {
    // A good edit, as cfn-hup applies it after `cdk deploy`: a new host revision, so a new handle.
    const good = synthesize({ ...config, receiver: { ...config.receiver, logLevel: 'debug' } }, 'good');
    expect(good.handleId).not.toBe(first.handleId);
    await applyOnHost(good);
    expect(JSON.parse(await guest!.readFile('/etc/triggler/receiver.json')).log.level).toBe('debug');
    expect((await guest!.readFile(SIGNAL_LOG)).trim().split('\n').at(-1)).toBe(
      `-e 0 --reason the receiver answers /healthz on port ${port} ${signalUrlOf(good)}`,
    );
    const goodConfig = await guest!.readFile('/etc/triggler/receiver.json');
    const goodUnit = await guest!.readFile('/etc/systemd/system/triggler-receiver.service');

    // A bad one: a receiver config that passed synth but that this receiver refuses (as a receiver
    // with a bug would), in a new revision; the health step waits 10 s instead of its 120 s.
    const bad = synthesize({ ...config, receiver: { ...config.receiver, logLevel: 'warn' } }, 'bad');
    const metadata = JSON.parse(JSON.stringify(initMetadataOf(bad.template, bad.instanceId))) as {
      receiver: { files: Record<string, { content: Record<string, unknown> }> };
      health: { commands: Record<string, { command: unknown[] }> };
    };
    metadata.receiver.files['/etc/triggler/receiver.json']!.content.listen = { host: '0.0.0.0', port: 'not-a-port' };
    metadata.health.commands['10-wait-healthy']!.command[2] = '10';
    const failure = await applyOnHost(bad, metadata as unknown as ReturnType<typeof initMetadataOf>).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(CfnInitError);
    expect((failure as Error).message).toMatch(/command 10-wait-healthy of config health exited 1/);

    const last = (await guest!.readFile(SIGNAL_LOG)).trim().split('\n').at(-1)!;
    timings.push(`the bad update's failure signal: ${last}`);
    expect(last.startsWith(`-e 1 --reason the receiver did not answer /healthz on port ${port} within 10 s (triggler-receiver is `)).toBe(
      true,
    );
    expect(last).toMatch(/listen\.port/);
    expect(last).not.toMatch(/Scheduled restart job|Started triggler-receiver/);
    expect(last.endsWith(`; the host went back to the previous version, which serves ${signalUrlOf(bad)}`)).toBe(true);
    expect(await guest!.readFile('/etc/triggler/receiver.json')).toBe(goodConfig);
    expect(await guest!.readFile('/etc/systemd/system/triggler-receiver.service')).toBe(goodUnit);
    await healthy();
    const sha = commit();
    expect(await deliver('main', sha)).toMatch(/^202 /);
    expect(await finishedRunWith(sha)).toMatchObject({ status: 'succeeded' });
  }, 300_000);
});
