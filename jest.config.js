/** Tests run TypeScript through swc (no type-check here: `npm run typecheck` does that). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  setupFiles: ['<rootDir>/test/support/quiet-sdk-warning.ts'],
  setupFilesAfterEnv: ['aws-sdk-client-mock-jest'],
  // A bound for a test that hangs, not a speed requirement: on a busy machine a test may take
  // several times its usual time, and it must then be slower, never failed.
  testTimeout: 120_000,
};
