/**
 * Which triggers a provider's delivery may run: those of the repository its body claims, and of
 * those, the ones whose token verifies the request.
 */
import { triggerNamesRepository, type ClaimedRepository, type TokenOrKeys } from '../../../protocol';
import type { Trigger } from '../../config/trigger-table';
import { type DeliveryContext, type Eventually, isPending, verifyWithTokens } from '../handler';

/**
 * Triggers of the claimed repository. A trigger names the repository the way its owner writes it:
 * the provider's name (`Hello-World`), its full name (`Codertocat/Hello-World`), or the path's last
 * segment where the display name differs from it (GitLab's `Diaspora` is `mike/diaspora`).
 */
export function triggersOf(context: DeliveryContext, repository: ClaimedRepository): Trigger[] {
  return context.triggers.all().filter((trigger) => triggerNamesRepository(trigger.config.repository, repository));
}

/**
 * Triggers whose token verifies the request: each distinct token name is tried once (with one
 * refresh from its source when it fails, in case the token was just rotated). With every token at
 * hand, the answer comes with no promise.
 */
export function verifiedTriggers(
  context: DeliveryContext,
  candidates: Trigger[],
  verify: (token: TokenOrKeys) => boolean,
  stopAtFirst: boolean,
): Eventually<Trigger[]> {
  const byTokenName = new Map<string, Trigger[]>();
  for (const trigger of candidates) {
    const group = byTokenName.get(trigger.token.tokenName);
    if (group) group.push(trigger);
    else byTokenName.set(trigger.token.tokenName, [trigger]);
  }
  const groups = [...byTokenName.values()];
  const verified: Trigger[] = [];
  const from = (index: number): Eventually<Trigger[]> => {
    for (let next = index; next < groups.length; next++) {
      const group = groups[next]!;
      const ok = verifyWithTokens(context, group[0]!, (tokens) => tokens.some(verify));
      if (isPending(ok)) {
        return ok.then((yes) => {
          if (yes) verified.push(...group);
          return yes && stopAtFirst ? verified : from(next + 1);
        });
      }
      if (ok) {
        verified.push(...group);
        if (stopAtFirst) break;
      }
    }
    return verified;
  };
  return from(0);
}
