/** The sender's settings from its environment: every bad value is refused with the field named. */
import { parseSenderRoutes, SenderConfigError, senderSettingsFromEnvironment } from '../../lambda/sender-routes';

const route = {
  repository: 'lambda-pipeline-repo',
  branch: 'feature/login',
  url: 'https://receiver.example.com:8443/triggler/',
  tokenParameter: '/triggler/lambda-pipeline-repo/feature/login',
  scheme: 'standard',
};

function problemsOf(json: string | undefined): string[] {
  try {
    parseSenderRoutes(json);
  } catch (error) {
    expect(error).toBeInstanceOf(SenderConfigError);
    return (error as SenderConfigError).problems;
  }
  throw new Error('expected the routes to be refused');
}

describe('TRIGGLER_ROUTES', () => {
  it('reads a valid table: base URL without its trailing slash, scheme defaulting to standard', () => {
    const table = parseSenderRoutes(JSON.stringify([route, { ...route, branch: 'main', scheme: undefined, url: 'http://10.0.0.5:5000' }]));
    expect(table.routesFor('lambda-pipeline-repo', 'feature/login')).toEqual([
      {
        repository: 'lambda-pipeline-repo',
        branch: 'feature/login',
        url: 'https://receiver.example.com:8443/triggler',
        tokenParameter: '/triggler/lambda-pipeline-repo/feature/login',
        scheme: 'standard',
      },
    ]);
    expect(table.routesFor('lambda-pipeline-repo', 'main')[0]).toMatchObject({ scheme: 'standard', url: 'http://10.0.0.5:5000' });
    expect(table.routesFor('lambda-pipeline-repo', 'feature')).toEqual([]);
    expect(table.routesFor('lambda-pipeline-repo-feature', 'login')).toEqual([]);
  });

  it('keeps several receivers for one branch', () => {
    const table = parseSenderRoutes(
      JSON.stringify([route, { ...route, url: 'https://second.example.com', scheme: 'seed', iterations: 10 }]),
    );
    expect(table.routesFor(route.repository, route.branch).map((r) => r.scheme)).toEqual(['standard', 'seed']);
  });

  it.each([
    ['unset', undefined, 'TRIGGLER_ROUTES: is not set'],
    ['not JSON', '[{', 'TRIGGLER_ROUTES: is not valid JSON'],
    ['not an array', JSON.stringify(route), 'TRIGGLER_ROUTES: Invalid input: expected array'],
    [
      'missing tokenParameter',
      JSON.stringify([{ ...route, tokenParameter: undefined }]),
      'TRIGGLER_ROUTES[0].tokenParameter: Invalid input: expected string',
    ],
    [
      'unknown scheme',
      JSON.stringify([{ ...route, scheme: 'hmac' }]),
      'TRIGGLER_ROUTES[0].scheme: Invalid option: expected one of "standard"|"seed"',
    ],
    ['empty branch', JSON.stringify([{ ...route, branch: '' }]), 'TRIGGLER_ROUTES[0].branch: must not be empty'],
    ['relative url', JSON.stringify([{ ...route, url: 'receiver:5000' }]), 'TRIGGLER_ROUTES[0].url: must use http or https'],
    [
      'ftp url',
      JSON.stringify([{ ...route, url: 'ftp://receiver.example.com' }]),
      'TRIGGLER_ROUTES[0].url: must use http or https, not ftp',
    ],
    [
      'url with credentials',
      JSON.stringify([{ ...route, url: 'https://user:secret@receiver.example.com' }]),
      'TRIGGLER_ROUTES[0].url: must not carry a user name or password',
    ],
    [
      'url with a query',
      JSON.stringify([{ ...route, url: 'https://receiver.example.com/?a=1' }]),
      'TRIGGLER_ROUTES[0].url: must not have a query or fragment',
    ],
    ['zero iterations', JSON.stringify([{ ...route, iterations: 0 }]), 'TRIGGLER_ROUTES[0].iterations: Too small'],
    ['fractional iterations', JSON.stringify([{ ...route, iterations: 1.5 }]), 'TRIGGLER_ROUTES[0].iterations: '],
    ['an unknown key', JSON.stringify([{ ...route, token: 'inline-token-value' }]), 'TRIGGLER_ROUTES[0]: Unrecognized key: "token"'],
    [
      'a repeated route',
      JSON.stringify([route, { ...route, url: 'https://receiver.example.com:8443/triggler' }]),
      'TRIGGLER_ROUTES[1]: repeats [0]',
    ],
  ])('refuses %s, naming the field', (_name, json, expected) => {
    const problems = problemsOf(json);
    expect(problems.some((p) => p.startsWith(expected))).toBe(true);
  });

  it('names every bad field at once', () => {
    const problems = problemsOf(
      JSON.stringify([
        { ...route, url: 'nope' },
        { ...route, branch: 'x', scheme: 'other' },
      ]),
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^TRIGGLER_ROUTES\[0\]\.url/);
    expect(problems[1]).toMatch(/^TRIGGLER_ROUTES\[1\]\.scheme/);
  });

  it('does not echo a password given in a url', () => {
    const problems = problemsOf(JSON.stringify([{ ...route, url: 'https://user:hunter2-password@receiver.example.com' }]));
    expect(problems.join('\n')).not.toContain('hunter2-password');
  });
});

describe('the other settings', () => {
  const routes = JSON.stringify([route]);

  it('has defaults: 10 s timeout, 60 s token cache, no commit details', () => {
    const settings = senderSettingsFromEnvironment({ TRIGGLER_ROUTES: routes });
    expect(settings).toMatchObject({ timeoutMs: 10_000, tokenTtlSeconds: 60, commitDetails: false });
  });

  it('reads them from the environment', () => {
    const settings = senderSettingsFromEnvironment({
      TRIGGLER_ROUTES: routes,
      TRIGGLER_TIMEOUT_MS: '2500',
      TRIGGLER_TOKEN_TTL_SECONDS: '0',
      TRIGGLER_COMMIT_DETAILS: 'true',
    });
    expect(settings).toMatchObject({ timeoutMs: 2500, tokenTtlSeconds: 0, commitDetails: true });
  });

  it.each([
    ['TRIGGLER_TIMEOUT_MS', 'ten'],
    ['TRIGGLER_TIMEOUT_MS', '0'],
    ['TRIGGLER_TIMEOUT_MS', '1.5'],
    ['TRIGGLER_TOKEN_TTL_SECONDS', '-1'],
    ['TRIGGLER_COMMIT_DETAILS', 'maybe'],
  ])('refuses %s=%s, naming the variable', (variable, value) => {
    expect(() => senderSettingsFromEnvironment({ TRIGGLER_ROUTES: routes, [variable]: value })).toThrow(new RegExp(`^${variable}: `));
  });
});
