/** Signing and verification of every scheme, trigger keys and payload types: pure functions, no I/O. */
export * from './seed-signature';
export * from './standard-webhooks';
export * from './token-keys';
export * from './push-event';
export * from './timestamp-window';
export * from './trigger-key';
export * from './delivery-request';
export * from './token';
export * from './provider-signatures';
export * from './provider-payloads';
export * from './schemes';
export * from './token-naming';
export * from './aws-error';
export * from './provider-requests';
export * from './ssh-keys';
export * from './shell-word';
export * from './rollout';
