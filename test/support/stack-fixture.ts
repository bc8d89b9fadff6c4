/**
 * Shared by the test/lib tests: the example config, the CLI's context from cdk.json, synthesis
 * with or without bundling, and template checks (asset hashes, token-like values, cycles).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Validations, type App, type Environment } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { parseStackConfig, type StackConfig, type StackConfigInput } from '../../lib/stack-config/schema';
import { createTrigglerApp } from '../../lib/triggler-app';
import type { TrigglerStack } from '../../lib/triggler-stack';

export const REPOSITORY_ROOT = path.join(__dirname, '..', '..');
export const EXAMPLE_CONFIG_PATH = path.join(REPOSITORY_ROOT, 'triggler.config.json');

export type Template = {
  Resources: Record<
    string,
    { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown>; DependsOn?: string | string[] }
  >;
  Outputs?: Record<string, { Value: unknown }>;
  Parameters?: Record<string, unknown>;
};

export function exampleConfigInput(): StackConfigInput {
  return JSON.parse(fs.readFileSync(EXAMPLE_CONFIG_PATH, 'utf8')) as StackConfigInput;
}

/** A config with every option of the stack on, which CI's template lint synthesizes too (scripts/lint-templates.ts). */
export const EVERY_OPTION_CONFIG_PATH = path.join(REPOSITORY_ROOT, 'scripts', 'every-option.config.json');

export function everyOptionConfigInput(): StackConfigInput {
  return JSON.parse(fs.readFileSync(EVERY_OPTION_CONFIG_PATH, 'utf8')) as StackConfigInput;
}

export function configOf(input: StackConfigInput): StackConfig {
  return parseStackConfig(input, 'test config');
}

/** The context `cdk synth` passes the app (cdk.json's), so tests synthesize what the CLI does. */
export function cliContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(REPOSITORY_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  return cdkJson.context;
}

/** Context that skips every bundling step (asset hashes then come from construct ids). */
export const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

let scratchRoot: string | undefined;

/**
 * A fresh folder for one synthesis, under one temp folder per test file (jest loads this module
 * once per file); `removeScratch()` in afterAll removes them all. Without an outdir the CDK would
 * leave a cdk.out* folder in the temp directory for every app.
 */
export function scratchOutdir(): string {
  scratchRoot ??= fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-synth-'));
  return fs.mkdtempSync(path.join(scratchRoot, 'out-'));
}

export function removeScratch(): void {
  if (scratchRoot) fs.rmSync(scratchRoot, { recursive: true, force: true });
  scratchRoot = undefined;
}

export function trigglerApp(
  config: StackConfig,
  options: { bundling?: boolean; outdir?: string; env?: Environment } = {},
): { app: App; stack: TrigglerStack } {
  return createTrigglerApp(config, {
    env: options.env,
    appProps: {
      outdir: options.outdir ?? scratchOutdir(),
      context: { ...cliContext(), ...(options.bundling ? {} : NO_BUNDLING) },
    },
  });
}

/** Every 64-hex asset hash the template refers to, replaced by a stable placeholder. */
export function normaliseAssetHashes(template: unknown): unknown {
  const text = JSON.stringify(template).replace(/[0-9a-f]{64}/g, '<asset-hash>');
  return JSON.parse(text) as unknown;
}

/**
 * Strings in the template that look like a secret: `whsec_`, or long hex or mixed base64 runs that
 * are not asset hashes (64 lowercase hex digits), logical ids, or names and construct paths CDK
 * derives from the stack name.
 */
export function findTokenLikeValues(template: Template, stackName: string): string[] {
  const logicalIds = Object.keys(template.Resources).concat(Object.keys(template.Outputs ?? {}), Object.keys(template.Parameters ?? {}));
  const isIdentifier = (run: string) => run.startsWith(stackName) || logicalIds.some((id) => run.includes(id) || id.includes(run));
  const findings: string[] = [];
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      if (/whsec_/i.test(value)) findings.push(value);
      for (const run of value.match(/[0-9a-fA-F]{32,}/g) ?? []) {
        if (!/^[0-9a-f]{64}$/.test(run) && !isIdentifier(run)) findings.push(run);
      }
      for (const run of value.match(/[A-Za-z0-9+/]{32,}={0,2}/g) ?? []) {
        const mixed = /[0-9]/.test(run) && /[a-z]/.test(run) && /[A-Z]/.test(run);
        if (mixed && !isIdentifier(run)) findings.push(run);
      }
    } else if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') Object.values(value).forEach(visit);
  };
  visit(template);
  return findings;
}

/** Resource dependency cycles (Ref, Fn::GetAtt, DependsOn), each as a list of logical ids. */
export function dependencyCycles(template: Template): string[][] {
  const edges = new Map<string, Set<string>>();
  const collect = (value: unknown, into: Set<string>): void => {
    if (Array.isArray(value)) value.forEach((v) => collect(v, into));
    else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if (key === 'Ref' && typeof inner === 'string') into.add(inner);
        else if (key === 'Fn::GetAtt' && Array.isArray(inner) && typeof inner[0] === 'string') into.add(inner[0]);
        else collect(inner, into);
      }
    }
  };
  for (const [id, resource] of Object.entries(template.Resources)) {
    const targets = new Set<string>();
    collect(resource.Properties ?? {}, targets);
    collect(resource.Metadata ?? {}, targets);
    for (const dependency of [resource.DependsOn ?? []].flat()) targets.add(dependency);
    edges.set(id, new Set([...targets].filter((t) => t in template.Resources)));
  }
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const walk = (id: string): void => {
    state.set(id, 'open');
    stack.push(id);
    for (const next of edges.get(id) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) walk(next);
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const id of edges.keys()) if (!state.has(id)) walk(id);
  return cycles;
}

/** Every cdk-nag finding acknowledged in a construct tree, with where and why (CDK's own built-in template checks left out). */
export function acknowledgedFindings(root: IConstruct): { path: string; id: string; reason: string }[] {
  const acknowledged: { path: string; id: string; reason: string }[] = [];
  const visit = (construct: IConstruct) => {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
        acknowledged.push({ path: construct.node.path, id, reason });
    }
    construct.node.children.forEach(visit);
  };
  visit(root);
  return acknowledged.filter(({ id }) => !id.startsWith('CloudFormation-Validate::'));
}
