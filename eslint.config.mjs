import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'cdk.out/**', 'coverage/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Runtime code never depends on the CDK: the receiver and the sender ship without it.
    files: ['receiver/**/*.ts', 'lambda/**/*.ts', 'protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '../lib/*', '../lib'], message: 'runtime code must not import the CDK app' }] }],
    },
  },
  {
    // Lambda handlers ship without the CDK and without the receiver: what they share with it is in protocol/.
    files: ['lambda/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '../lib/*', '../lib'], message: 'runtime code must not import the CDK app' },
        { group: ['../receiver/*', '../receiver'], message: 'Lambda handlers must not import the receiver; put what both need in protocol/' },
      ] }],
    },
  },
  {
    // The protocol is pure: no I/O, nothing of ours.
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../*', 'node:fs', 'node:http', 'node:net', 'node:child_process', 'fs', 'http', 'net', 'child_process'], message: 'the protocol module is pure: no I/O and nothing of ours' }] }],
    },
  },
);
