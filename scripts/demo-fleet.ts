/**
 * `npm run demo:fleet`: a rollout to a fleet of three hosts, without an AWS account. The rollout
 * state machine `cdk synth` writes runs in the local engine the tests use (aws-local-stepfunctions,
 * a local Run Command, dynalite for the lock table): three real receivers on 127.0.0.1, one push,
 * the rollout's progress as it happens, and each host's `current` at the end.
 */
import { rolloutInput } from '../protocol';
import { FLEET_BRANCH, FLEET_REPOSITORY, FleetHosts } from '../test/support/fleet/fleet-hosts';
import { LocalRolloutEngine } from '../test/support/fleet/local-engine';
import { LOCAL_FLEET_PROPS } from '../test/support/fleet/synthesized-rollout';

/** The states worth a line: the phases, not the polling between them. */
const PHASES = new Map<string, string>([
  ['Take the lock', 'lock taken: no other rollout of this branch runs'],
  ['Snapshot the fleet', 'snapshot of the fleet (instances with the fleet tag, agent online)'],
  ['Split the prepare into chunks', 'prepare on every host: fetch, lay out and build the commit, switch nothing'],
  ['Switch batch by batch', 'prepared everywhere: switching, the canary first'],
  ['Check the alarms', 'checking the alarms'],
  ['Record the fleet commit', 'every host switched: the fleet commit parameter now names the commit'],
  ['Split the rollback into chunks', 'rolling back every switched host'],
]);

async function main(): Promise<void> {
  const started = Date.now();
  const say = (line: string) => process.stdout.write(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s  ${line}\n`);
  const hosts = new FleetHosts(LOCAL_FLEET_PROPS.fleetTag);
  let engine: LocalRolloutEngine | undefined;
  try {
    say('starting three receivers on 127.0.0.1, each with its own state directory and deploy path');
    await hosts.add(3);
    engine = await LocalRolloutEngine.start({
      hosts,
      rollout: { canary: 1, batchSize: 2, maxFailedHosts: 0, bakeSeconds: 30, alarms: ['app-errors'], hold: false },
    });
    const commit = hosts.repo.commit({ 'index.html': '<h1>hello, fleet</h1>\n' });
    say(`push of ${commit.slice(0, 12)} to ${FLEET_REPOSITORY}@${FLEET_BRANCH}: a sender starts the rollout`);
    const seen = new Set<string>();
    engine.onProgress((_execution, state) => {
      const phase = PHASES.get(state);
      if (phase && (state === 'Check the alarms' || !seen.has(state))) say(phase);
      seen.add(state);
    });
    engine.onRunCommand((event) => {
      if (event.type === 'sent') say(`  Run Command: ${event.step} on ${event.instanceIds.join(', ')}`);
      if (event.type === 'invocation') {
        const line = event.output.split('\n')[0] ?? '';
        const release = /"release":"([^"]+)"/.exec(line)?.[1];
        say(`  ${event.instanceId} ${event.step}: ${event.status}${release ? ` (release ${release})` : ''}`);
      }
      if (event.type === 'cancelled') say(`  Run Command: ${event.step} cancelled`);
    });
    const ended = await engine.start(rolloutInput(FLEET_REPOSITORY, FLEET_BRANCH, commit, 'demo-delivery-1')).done;
    say(`rollout ${ended.summary?.outcome ?? ended.status}${ended.summary?.reason ? `: ${ended.summary.reason}` : ''}`);
    process.stdout.write('\nEach host now:\n');
    for (const host of hosts.hosts) {
      const current = await hosts.current(host.instanceId);
      process.stdout.write(`  ${host.instanceId}  current -> ${current ?? 'none'}\n`);
    }
    if (ended.summary?.outcome !== 'succeeded') process.exitCode = 1;
  } finally {
    await engine?.dispose();
    await hosts.dispose();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`demo:fleet failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
