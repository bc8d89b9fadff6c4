import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** What all of lib/ may import of runtime code (see the lib/ blocks below). */
const LIB_PATTERNS = [
  { group: ['**/lambda/*'], allowTypeImports: true, message: 'lib/ may take types from lambda/, never code' },
  {
    group: [
      '**/receiver/*',
      '!**/receiver/config',
      '**/receiver/*/*',
      '!**/receiver/config/schema',
      '!**/receiver/config/startup-problems',
    ],
    message: "lib/ may use the receiver's config schema and its config checks only",
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'cdk.out/**', 'coverage/**', 'dist/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        __filename: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Programs tests and benches run as plain node (test/support/children, bench/probes): Node's
    // globals that TypeScript files get from @types/node.
    files: ['test/support/children/**/*.{js,mjs}', 'bench/probes/**/*.js'],
    languageOptions: { globals: { performance: 'readonly', fetch: 'readonly' } },
  },
  {
    // Runtime code never depends on the CDK: the receiver and the sender ship without it.
    files: ['receiver/**/*.ts', 'lambda/**/*.ts', 'protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '**/lib', '**/lib/*'],
              message: 'runtime code must not import the CDK app',
            },
          ],
        },
      ],
    },
  },
  {
    // Lambda handlers ship without the CDK and without the receiver: what they share with it is in protocol/.
    files: ['lambda/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '../lib/*', '../lib'],
              message: 'runtime code must not import the CDK app',
            },
            {
              group: ['../receiver/*', '../receiver'],
              message: 'Lambda handlers must not import the receiver; put what both need in protocol/',
            },
          ],
        },
      ],
    },
  },
  {
    // The protocol is pure: no I/O, nothing of ours.
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*', 'node:fs', 'node:http', 'node:net', 'node:child_process', 'fs', 'http', 'net', 'child_process'],
              message: 'the protocol module is pure: no I/O and nothing of ours',
            },
          ],
        },
      ],
    },
  },
  // The receiver's layers (docs/architecture.md): only the composition root imports across them.
  ...receiverLayer('config', ['http', 'schemes', 'tokens', 'runs', 'notify'], 'the config layer depends on nothing of the receiver'),
  ...receiverLayer('tokens', ['http', 'schemes', 'runs', 'notify'], 'token sources know the config, nothing else of the receiver'),
  ...receiverLayer('schemes', ['http', 'runs', 'notify'], 'schemes hand deliveries to a DeliverySink, never to the runner itself'),
  ...receiverLayer('runs', ['http', 'schemes', 'tokens', 'notify'], 'the runs know nothing of HTTP, schemes, tokens or notifications'),
  ...receiverLayer(
    'http',
    ['runs', 'tokens', 'notify'],
    'the HTTP layer answers errors by their code (receiver/errors); it never imports the runner or the journal',
    ['runs'],
  ),
  {
    // Only the delivery listener (its server and its routing table) routes to the webhook schemes;
    // the admin listener and what both listeners share answer in the vocabulary of receiver/errors.
    files: ['receiver/http/**/*.ts'],
    ignores: ['receiver/http/delivery-server.ts', 'receiver/http/delivery-routes.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../schemes', '../schemes/*', '../schemes/**'],
              message: 'only the delivery listener knows the webhook schemes; answer with receiver/errors',
            },
            {
              group: ['../tokens', '../tokens/*', '../notify', '../notify/*', '../receiver', '../cluster', '../main'],
              message: 'the HTTP layer answers errors by their code (receiver/errors); it never imports the runner or the journal',
            },
            {
              group: ['../runs', '../runs/*'],
              allowTypeImports: true,
              message:
                'the HTTP layer answers errors by their code (receiver/errors); it never imports the runner or the journal (types only)',
            },
            {
              group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '**/lib', '**/lib/*'],
              message: 'runtime code must not import the CDK app',
            },
          ],
        },
      ],
    },
  },
  {
    // The error catalogue is what every layer throws from: it imports nothing of the receiver.
    files: ['receiver/errors.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['./*', '../*'], message: 'the error catalogue depends on nothing: every layer imports it' }] },
      ],
    },
  },
  ...receiverLayer(
    'notify',
    ['http', 'schemes', 'tokens', 'runs'],
    'notifications get a finished run and a way to a token; they never reach into the runner or the token sources',
    ['runs'],
  ),
  {
    // The receiver's front door: the CLI, scripts and benches use receiver/index.ts only, so that
    // what lies behind it can move without reaching into them.
    files: ['bin/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/receiver/*', '!**/receiver/index'],
              message: "import the receiver through its front door, receiver/index.ts ('../receiver')",
            },
          ],
        },
      ],
    },
  },
  {
    // The CDK app meets runtime code only through data: the receiver's config schema and the
    // sender's route type.
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: LIB_PATTERNS }],
    },
  },
  {
    // The stack config's domain and the files shipped to a host are plain data and rules: the CLI,
    // `npm pack` and the JSON Schema use them without loading the CDK.
    files: ['lib/stack-config/**/*.ts', 'lib/host-files/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            ...LIB_PATTERNS,
            {
              group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', 'cdk-nag', '**/constructs/*', '../triggler-*', '../construct-props'],
              message: 'lib/stack-config and lib/host-files know nothing of the CDK: pass what a construct provides in as data',
            },
          ],
        },
      ],
    },
  },
);

/**
 * A receiver layer may not import the named layers (`typesFrom` are allowed as type-only imports).
 * Paths are matched relative to the layer's own folder and its subfolders.
 */
function receiverLayer(layer, forbidden, message, typesFrom = []) {
  const groups = (names) => names.flatMap((name) => [`../${name}`, `../${name}/*`, `../../${name}`, `../../${name}/*`]);
  const hard = forbidden.filter((name) => !typesFrom.includes(name));
  const patterns = [
    { group: [...groups(hard), '../receiver', '../../receiver', '../cluster', '../../cluster', '../main', '../../main'], message },
  ];
  if (typesFrom.length > 0) patterns.push({ group: groups(typesFrom), allowTypeImports: true, message: `${message} (types only)` });
  return [
    {
      files: [`receiver/${layer}/**/*.ts`],
      rules: {
        'no-restricted-imports': 'off',
        '@typescript-eslint/no-restricted-imports': [
          'error',
          {
            patterns: [
              ...patterns,
              {
                group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '**/lib', '**/lib/*'],
                message: 'runtime code must not import the CDK app',
              },
            ],
          },
        ],
      },
    },
  ];
}
