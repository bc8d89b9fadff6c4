/**
 * CI's CloudFormation lint: synthesizes the templates of the shipped config and of a config with
 * every option on (scripts/every-option.config.json) and of a fleet (scripts/fleet.config.json), then runs the real linter (cfn-lint with
 * AWS's resource schemas, offline) on them for several regions. Fails on any error but E3009, a
 * known false positive: CloudFormation's Init takes a command as an array, which CDK emits.
 * Warnings and notes are printed, not fatal.
 *
 * Usage: tsx scripts/lint-templates.ts CFN_LINT_RUN [OUTDIR]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadStackConfig } from '../lib/stack-config/schema';
import { createTrigglerApp } from '../lib/triggler-app';

const ROOT = path.join(__dirname, '..');

/** The configs whose templates are linted. */
export const LINTED_CONFIGS = [
  path.join(ROOT, 'triggler.config.json'),
  path.join(ROOT, 'scripts', 'every-option.config.json'),
  // A fleet: the Auto Scaling group, the Command document, the association and the rollout.
  path.join(ROOT, 'scripts', 'fleet.config.json'),
];

/** Regions that offer everything the linted configs use (CodeCommit's CloudFormation type, Function URLs). */
export const LINTED_REGIONS = ['us-east-1', 'eu-west-1', 'ap-northeast-1', 'sa-east-1'];

/** cfn-lint's exit status is a bit set; this bit means errors. */
const ERRORS = 2;

/** Synthesizes each config's template (no bundling: the lint reads the template, not the assets). */
export function synthesizeTemplates(outdir: string): string[] {
  return LINTED_CONFIGS.map((configPath) => {
    const config = loadStackConfig(configPath);
    const dir = path.join(outdir, path.basename(configPath, '.json'));
    createTrigglerApp(config, { appProps: { outdir: dir, context: { 'aws:cdk:bundling-stacks': [] } } }).app.synth();
    return path.join(dir, `${config.stackName}.template.json`);
  });
}

if (require.main === module) {
  const [linter, outdirArgument] = process.argv.slice(2);
  if (!linter) throw new Error('usage: tsx scripts/lint-templates.ts CFN_LINT_RUN [OUTDIR]');
  const outdir = outdirArgument ?? fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-lint-'));
  try {
    const templates = synthesizeTemplates(outdir);
    const result = spawnSync(linter, [...templates, '--regions', ...LINTED_REGIONS, '--ignore-checks', 'E3009'], { stdio: 'inherit' });
    if (result.error) throw result.error;
    const status = result.status ?? 1;
    process.stdout.write(
      `cfn-lint: ${templates.length} templates, regions ${LINTED_REGIONS.join(' ')}: exit ${status}${status & ERRORS ? ' (errors)' : ' (no errors)'}\n`,
    );
    process.exitCode = status & ERRORS || status > 15 ? 1 : 0;
  } finally {
    if (!outdirArgument) fs.rmSync(outdir, { recursive: true, force: true });
  }
}
