/**
 * `npm run test:host`: the receiver host booted under real systemd (test/host). Kept out of the
 * plain `jest` run: it needs root, systemd-nspawn and debootstrap, and takes a minute or more.
 */
const base = require('../../jest.config.js');

module.exports = {
  ...base,
  rootDir: '../..',
  roots: ['<rootDir>/test/host'],
  testMatch: ['**/*.guest.ts'],
  testTimeout: 120000,
  // One guest at a time on a small machine.
  maxWorkers: 1,
};
