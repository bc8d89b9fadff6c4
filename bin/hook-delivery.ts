/**
 * What the post-receive hook does with a push: finds its token (a token file, a variable, or the
 * receiver's own config and token file on the same box), signs one delivery and sends it, and
 * keeps in the spool only what the receiver may still take later. A branch with no trigger is
 * known from the names the hook can read (the config's triggers, the token file's names) and is
 * neither sent nor kept: the receiver answers an unknown trigger as it answers a bad signature, so
 * its answer cannot say which it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDeliveryRequest, type PushData, tokenNameOf } from '../protocol';
import { loadReceiverConfigFile, readTokenFile, tokensOfEntry } from '../receiver';
import { configTriggerToken } from './config-token';
import { postDelivery, runOf } from './deliver';
import type { Spool, SpooledPush } from './hook-spool';

const HOOK_SETTINGS_FILE = 'triggler-hook.json';

export interface HookSettings {
  url: string;
  repository: string;
  tokenFile?: string;
  tokenEnv?: string;
  tokenName?: string;
  /** The receiver's config on this box: its triggers say which branches have one, and it gives their tokens. */
  config?: string;
  spool: string;
  timeoutMs: number;
  /** With `hook install --wait`: follow each accepted push's run through this admin listener, for at most `waitMs`. */
  follow?: { admin: string; waitMs: number };
}

export function settingsPath(gitDir: string): string {
  return path.join(gitDir, HOOK_SETTINGS_FILE);
}

export function readSettings(gitDir: string): HookSettings {
  const file = settingsPath(gitDir);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as HookSettings;
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message} (triggler hook install --git-dir ${gitDir} ... writes it)`, {
      cause: error,
    });
  }
}

/** A token, or why the branch has no trigger (nothing to send, nothing to keep). */
type TokenLookup = { token: string } | { noTrigger: string };

/** Throws when the token cannot be had now but may be later (a file not readable, a variable not set): the push is kept. */
async function tokenFor(settings: HookSettings, branch: string): Promise<TokenLookup> {
  if (settings.tokenEnv) {
    const token = process.env[settings.tokenEnv];
    if (!token) throw new Error(`${settings.tokenEnv} is not set in the hook's environment`);
    return { token };
  }
  if (settings.config) {
    const { config } = loadReceiverConfigFile(settings.config);
    const trigger = config.triggers.find((t) => t.repository === settings.repository && t.branch === branch);
    if (!trigger) return { noTrigger: `no trigger for ${settings.repository} ${branch} in ${settings.config}` };
    return { token: await configTriggerToken(config, trigger, settings.config) };
  }
  if (!settings.tokenFile) throw new Error(`${HOOK_SETTINGS_FILE} names neither tokenFile, tokenEnv nor config`);
  const name = tokenNameOf({ repository: settings.repository, branch, tokenName: settings.tokenName });
  const entry = (await readTokenFile(settings.tokenFile))[name];
  if (entry === undefined)
    return { noTrigger: `no trigger for ${settings.repository} ${branch} (no token named ${name} in ${settings.tokenFile})` };
  const [token] = tokensOfEntry(entry, 0, Date.now());
  if (!token) throw new Error(`the token named ${name} in ${settings.tokenFile} has no current value`);
  return { token };
}

/** `noTrigger`: the branch has none, so the push is neither sent nor kept. */
export type Outcome =
  { sent: true; run: string | undefined; what: string } | { sent: false; keep: boolean; noTrigger?: true; what: string };

export async function deliver(settings: HookSettings, push: SpooledPush): Promise<Outcome> {
  let lookup: TokenLookup;
  try {
    lookup = await tokenFor(settings, push.branch);
  } catch (error) {
    return { sent: false, keep: true, what: `not sent: ${(error as Error).message}` };
  }
  if ('noTrigger' in lookup) return { sent: false, keep: false, noTrigger: true, what: `${lookup.noTrigger}: nothing sent, nothing kept` };
  const data: PushData = {
    repository: push.repository,
    branch: push.branch,
    ref: push.ref,
    commit: push.commit,
    ...(push.previousCommit ? { previousCommit: push.previousCommit } : {}),
    ...(push.pusher ? { pusher: push.pusher } : {}),
    source: 'git-hook',
  };
  const delivery = buildDeliveryRequest({
    scheme: 'standard',
    token: lookup.token,
    id: push.id,
    timestamp: Math.floor(Date.now() / 1000),
    data,
  });
  try {
    const answer = await postDelivery(settings.url, delivery, settings.timeoutMs);
    if (answer.status === 202 || answer.status === 200) {
      const run = runOf(answer);
      return { sent: true, run, what: `${answer.status === 202 ? 'accepted' : 'already accepted'}, run ${run ?? '?'}` };
    }
    const retryable = answer.status >= 500 || answer.status === 408 || answer.status === 429;
    return {
      sent: false,
      keep: retryable,
      what: `receiver answered ${answer.status}${typeof answer.body.error === 'string' ? ` (${answer.body.error})` : ''}`,
    };
  } catch (error) {
    return { sent: false, keep: true, what: `receiver unreachable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
}

export interface SendResult {
  /** One line for the pusher. */
  line: string;
  /** How many deliveries the spool still holds. */
  left: number;
  /** The runs this push's deliveries joined, for `--wait` to follow. */
  runs: { push: SpooledPush; run: string }[];
}

/**
 * Sends what the spool holds (oldest first), then `pushes`. With no pushes (`hook flush`), each
 * delivery still kept is named with why.
 */
export async function sendPushes(settings: HookSettings, spool: Spool, pushes: SpooledPush[]): Promise<SendResult> {
  const parts: string[] = [];
  const stillKept: string[] = [];
  const runs: SendResult['runs'] = [];
  let resent = 0;
  for (const { file, push } of spool.waiting()) {
    const outcome = await deliver(settings, push);
    if (outcome.sent || !outcome.keep) {
      spool.remove(file);
      if (outcome.sent) resent += 1;
      else parts.push(`${push.branch} (kept since ${push.pushedAt}) dropped: ${outcome.what}`);
    } else stillKept.push(`${push.branch} ${push.commit.slice(0, 12)} (kept since ${push.pushedAt}) still kept: ${outcome.what}`);
  }
  if (resent > 0) parts.push(`${resent} kept ${resent === 1 ? 'delivery' : 'deliveries'} sent`);
  for (const push of pushes) {
    const outcome = await deliver(settings, push);
    const label = `${push.branch} ${push.commit.slice(0, 12)}`;
    if (outcome.sent) {
      parts.push(`${label}: ${outcome.what}`);
      if (outcome.run) runs.push({ push, run: outcome.run });
    } else if (outcome.keep) {
      spool.keep(push);
      parts.push(`${label}: ${outcome.what}; kept in ${settings.spool}, sent again on the next push or by triggler hook flush`);
    } else if (outcome.noTrigger) parts.push(`${label}: ${outcome.what}`);
    else parts.push(`${label}: not delivered: ${outcome.what}`);
  }
  const left = spool.waiting().length;
  const lines =
    parts.length > 0 || stillKept.length > 0
      ? [...(parts.length > 0 ? [parts.join('; ')] : []), ...(pushes.length === 0 ? stillKept : [])]
      : ['nothing to send (no branch was updated)'];
  if (lines.length === 0) lines.push(`${left} still kept in ${settings.spool}`);
  return { line: lines.map((line) => `triggler: ${line}`).join('\n'), left, runs };
}
