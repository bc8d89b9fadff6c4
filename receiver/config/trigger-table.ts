/** The configured triggers, indexed the ways requests name them. */
import { tokenNameOf, triggerKey } from '../../protocol';
import type { TriggerConfig } from './schema';

/** Which token verifies a trigger's deliveries: a token source looks it up by these. */
export interface TokenRef {
  repository: string;
  branch: string;
  /** The name the token is stored under (`tokenNameOf` of the protocol). */
  tokenName: string;
}

export interface Trigger {
  key: string;
  config: TriggerConfig;
  token: TokenRef;
  /** Seed-scheme hash rounds for this trigger. */
  iterations: number;
}

export class TriggerTable {
  private readonly byKey = new Map<string, Trigger>();
  private readonly bySeedRoute = new Map<string, Trigger>();

  constructor(triggers: readonly TriggerConfig[], defaultIterations: number) {
    for (const config of triggers) {
      const trigger: Trigger = {
        key: triggerKey(config.repository, config.branch),
        config,
        token: { repository: config.repository, branch: config.branch, tokenName: tokenNameOf(config) },
        iterations: config.iterations ?? defaultIterations,
      };
      this.byKey.set(trigger.key, trigger);
      // The config schema refuses two triggers whose seed routes collide, so this is one-to-one.
      this.bySeedRoute.set(`${config.repository}-${config.branch}`, trigger);
    }
  }

  get(repository: string, branch: string): Trigger | undefined {
    return this.byKey.get(triggerKey(repository, branch));
  }

  /** `/<repo>-<branch>` is ambiguous when names hold dashes: only configured triggers resolve it. */
  bySeedPath(route: string): Trigger | undefined {
    return this.bySeedRoute.get(route);
  }

  all(): Trigger[] {
    return [...this.byKey.values()];
  }
}
