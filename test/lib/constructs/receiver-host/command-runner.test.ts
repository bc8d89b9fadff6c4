/**
 * The command runner on the AWS host: the stack installs its socket and its per-command service
 * (the files beside the construct, byte for byte), the writable paths for it too, starts the
 * socket, and points the receiver config's commandRunner at it. The runner's unit carries the
 * receiver's hardening line for line and denies the instance metadata service; the host test
 * proves under real systemd that a command cannot reach it while the receiver can.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template as Assertions } from 'aws-cdk-lib/assertions';
import { ReceiverHost } from '../../../../lib/constructs/receiver-host/receiver-host';
import { ReceiverNetwork } from '../../../../lib/constructs/receiver-network';
import { TriggerTokens } from '../../../../lib/constructs/trigger-tokens';
import { configOf, NO_BUNDLING, removeScratch, scratchOutdir, trigglerApp } from '../../../support/stack-fixture';

afterAll(removeScratch);

const HOST_FILES = path.join(__dirname, '..', '..', '..', '..', 'lib', 'host-files');
const hostFile = (name: string) => fs.readFileSync(path.join(HOST_FILES, name), 'utf8');

type InitConfig = {
  files?: Record<string, { content: unknown; owner?: string; mode?: string }>;
  commands?: Record<string, { command: unknown }>;
};

function initOf(): Record<string, InitConfig> {
  const { stack } = trigglerApp(
    configOf({ triggers: [{ repository: 'my-app', branch: 'main', command: './build.sh' }], receiver: { writablePaths: ['/srv/app'] } }),
  );
  const resources = Assertions.fromStack(stack).toJSON().Resources as Record<string, { Type: string; Metadata?: Record<string, unknown> }>;
  return Object.values(resources).find((r) => r.Type === 'AWS::EC2::Instance')!.Metadata!['AWS::CloudFormation::Init'] as Record<
    string,
    InitConfig
  >;
}

/** The lines of a unit that restrict what its processes may do. */
const hardening = (unit: string) =>
  unit
    .split('\n')
    .filter((line) =>
      /^(NoNewPrivileges|Protect|Private|Restrict|LockPersonality|Capability|Ambient|SystemCall|User|Group|StateDirectory|ReadWritePaths|LimitNOFILE)/.test(
        line,
      ),
    );

describe('the command runner on the AWS host', () => {
  const init = initOf();
  const files = init.receiver!.files!;

  it('installs the socket and the per-command service from the files beside the construct, and starts the socket', () => {
    expect(files['/etc/systemd/system/triggler-command.socket']).toMatchObject({
      content: hostFile('triggler-command.socket'),
      owner: 'root',
      mode: '000644',
    });
    expect(files['/etc/systemd/system/triggler-command@.service']).toMatchObject({
      content: hostFile('triggler-command@.service'),
      owner: 'root',
      mode: '000644',
    });
    expect(init.receiver!.commands!['20-command-socket']!.command).toEqual(['systemctl', 'enable', '--now', 'triggler-command.socket']);
    // The commands write where they always could: receiver.writablePaths, like the receiver's unit.
    const dropIn = (unit: string) => (files[`/etc/systemd/system/${unit}.d/50-writable-paths.conf`]!.content as string).split('\n');
    expect(dropIn('triggler-command@.service')).toContain('ReadWritePaths=-/srv/app');
    expect(dropIn('triggler-command@.service')).toEqual(dropIn('triggler-receiver.service'));
  });

  it("points the receiver config's commandRunner at the socket", () => {
    const config = files['/etc/triggler/receiver.json']!.content as { commandRunner?: { socket: string } };
    expect(config.commandRunner).toEqual({ socket: '/run/triggler/command.sock' });
    expect(hostFile('triggler-command.socket').split('\n')).toContain('ListenStream=/run/triggler/command.sock');
  });

  it('lets only the service user connect, one instance per connection', () => {
    const socket = hostFile('triggler-command.socket').split('\n');
    for (const line of ['SocketUser=triggler', 'SocketGroup=triggler', 'SocketMode=0600', 'Accept=yes']) expect(socket).toContain(line);
  });

  it("runs each command under the receiver's hardening, without instance metadata, and stops its whole cgroup at the end", () => {
    const runner = hostFile('triggler-command@.service');
    const receiver = hostFile('triggler-receiver.service');
    expect(hardening(runner)).toEqual(hardening(receiver));
    expect(hardening(runner).length).toBeGreaterThan(20);
    expect(runner.split('\n')).toContain('IPAddressDeny=169.254.169.254 fd00:ec2::254');
    expect(runner.split('\n')).toContain('KillMode=control-group');
    expect(runner.split('\n')).toContain('ExecStart=/usr/bin/node-22 /opt/triggler/command-runner.js');
    // The receiver itself keeps instance metadata: its tokens come from SSM with the instance's credentials.
    expect(receiver).not.toMatch(/^IPAddress/m);
  });

  it("keeps a command from reading the receiver's memory: Yama's ptrace scope 1, for every boot and at once where the kernel has Yama", () => {
    expect(init.system!.files!['/etc/sysctl.d/60-git-triggler-ptrace.conf']).toMatchObject({ owner: 'root', mode: '000644' });
    expect(init.system!.files!['/etc/sysctl.d/60-git-triggler-ptrace.conf']!.content).toMatch(/^kernel\.yama\.ptrace_scope = 1$/m);
    expect(init.system!.commands!['30-ptrace-scope']!.command).toBe(
      '[ ! -e /proc/sys/kernel/yama/ptrace_scope ] || sysctl -q -p /etc/sysctl.d/60-git-triggler-ptrace.conf',
    );
  });

  it('refuses more concurrent runs than the socket takes connections, naming the field', () => {
    const stack = new Stack(new App({ outdir: scratchOutdir(), context: NO_BUNDLING }), 'Limits');
    const host = (maxConcurrentRuns: number) =>
      new ReceiverHost(stack, `Receiver${maxConcurrentRuns}`, {
        vpc: new ReceiverNetwork(stack, `Network${maxConcurrentRuns}`).vpc,
        tokens: new TriggerTokens(stack, `Tokens${maxConcurrentRuns}`, { prefix: '/t', tokenNames: ['app/main'] }),
        receiverConfig: {
          tokens: { ssm: { prefix: '/t' } },
          limits: { maxConcurrentRuns },
          triggers: [{ repository: 'app', branch: 'main', command: 'true' }],
        },
      });
    expect(host(4096).receiverConfig.commandRunner).toEqual({ socket: '/run/triggler/command.sock' });
    expect(() => host(4097)).toThrow(
      /receiverConfig\.limits\.maxConcurrentRuns: must be at most 4096: each running command holds a connection to triggler-command\.socket/,
    );
  });
});
