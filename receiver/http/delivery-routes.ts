/**
 * The delivery listener's routing table, tried in order:
 *   GET  /healthz                   200 once listening
 *   POST /hooks/<provider>          a provider's native webhook (github, gitlab, gitea, forgejo, bitbucket)
 *   POST /hooks/<repo>/<branch>     Standard Webhooks (parts URL-encoded; the branch may hold `/`)
 *   GET|POST /<repo>-<branch>       the seed-compatible scheme
 * Each row names its methods, whether its scheme keeps the body, and its handler.
 */
import { badRequest, Rejection, type Reply } from '../errors';
import { type DeliveryContext, type DeliveryHandler, isPending } from '../schemes/handler';
import { providerHandler } from '../schemes/providers/provider-delivery';
import { providerSchemes } from '../schemes/providers';
import { seedHandler } from '../schemes/seed';
import type { SeedChains } from '../schemes/seed-chains';
import { standardHandler } from '../schemes/standard';

/** One row of the routing table. */
export interface Route {
  methods: readonly string[];
  /** False for a scheme that uses no body: it is held to the limit but not kept. */
  keepsBody: boolean;
  /**
   * Tells by the path's shape alone whether the route is the path's; the target it returns is read
   * (decoded, which may refuse the path) only after the method was found right.
   */
  match(path: string): (() => unknown) | undefined;
  handler: DeliveryHandler<unknown, unknown>;
  /** The answer to a method the route does not take. */
  methodNotAllowed: Reply;
}

function route<Target, Checked>(
  methods: readonly string[],
  match: (path: string) => (() => Target) | undefined,
  handler: DeliveryHandler<Target, Checked>,
  keepsBody = true,
): Route {
  const allow = methods.filter((method) => method !== 'HEAD').join(', ');
  return {
    methods,
    keepsBody,
    match,
    handler: handler as DeliveryHandler<unknown, unknown>,
    methodNotAllowed: { status: 405, body: { error: `method not allowed: use ${allow}` }, headers: { allow } },
  };
}

function decodePart(part: string, name: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw badRequest(`path: the ${name} is not valid percent-encoding`);
  }
}

const HOOKS = '/hooks/';

/** `/hooks/<name>` with no further slash names a provider's webhook. */
function providerName(path: string): (() => string) | undefined {
  if (!path.startsWith(HOOKS)) return undefined;
  const name = path.slice(HOOKS.length);
  return name.includes('/') ? undefined : () => name;
}

/** `/hooks/<repository>/<branch>`, each part URL-encoded. */
function standardTarget(path: string): (() => { repository: string; branch: string }) | undefined {
  if (!path.startsWith(HOOKS)) return undefined;
  const rest = path.slice(HOOKS.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  return () => {
    const repository = decodePart(rest.slice(0, slash), 'repository');
    const branch = decodePart(rest.slice(slash + 1), 'branch');
    if (repository === '' || branch === '') throw badRequest('path: use /hooks/<repository>/<branch>');
    return { repository, branch };
  };
}

export function routingTable(context: DeliveryContext, chains: SeedChains): Route[] {
  /** 200 while deliveries can be accepted; 503 "degraded", with the reason, while the journal cannot be written. */
  const health: DeliveryHandler<true, void> = {
    precheck: () => undefined,
    handle() {
      const state = context.sink.health?.() ?? { status: 'ok' };
      return { status: state.status === 'ok' ? 200 : 503, body: state };
    },
  };
  const providers = new Map(Object.entries(providerSchemes).map(([name, scheme]) => [name, providerHandler(scheme, context)]));
  const providerRoute: DeliveryHandler<string, { name: string; checked: unknown }> = {
    precheck(req, name) {
      const handler = providers.get(name);
      // The reason the log counts by is one wording; the name the client chose is a field beside it.
      if (!handler)
        return new Rejection('no-such-webhook', `no such webhook: /hooks/${name.slice(0, 64)}`, 'no such provider webhook', {
          webhook: name.slice(0, 64),
        });
      const named = (checked: unknown) => (checked instanceof Rejection ? checked : { name, checked });
      const checked = handler.precheck(req, undefined);
      return isPending(checked) ? checked.then(named) : named(checked);
    },
    handle: ({ name, checked }, body) => providers.get(name)!.handle(checked as (body: Buffer) => never, body),
  };
  return [
    route(['GET', 'HEAD'], (path) => (path === '/healthz' ? () => true : undefined), health),
    route(['POST'], providerName, providerRoute),
    route(['POST'], standardTarget, standardHandler(context)),
    // Every other path is a seed route `/<repo>-<branch>`, resolved against the configured triggers only.
    // It signs no body: a body is held to the limit and dropped as it comes, never buffered.
    route(['GET', 'POST'], (path) => () => decodePart(path.slice(1), 'route'), seedHandler(context, chains), false),
  ];
}
