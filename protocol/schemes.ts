/**
 * The names of the signature schemes: the two a sender of ours signs with, and the providers whose
 * native webhooks the receiver verifies. Every list of schemes in the code derives from these.
 */

/** The schemes between our own ends: Standard Webhooks (the default) and the original `X-Signature` scheme. */
export const SENDER_SCHEMES = ['standard', 'seed'] as const;
export type SenderScheme = (typeof SENDER_SCHEMES)[number];

/** Providers whose native webhooks the receiver takes at `POST /hooks/<provider>`. */
export const PROVIDERS = ['github', 'gitlab', 'gitea', 'bitbucket'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Every scheme a delivery can arrive by: what a run records and a command sees as TRIGGLER_SCHEME. */
export const SCHEMES = [...SENDER_SCHEMES, ...PROVIDERS] as const;
export type Scheme = (typeof SCHEMES)[number];

export function isProvider(scheme: string): scheme is ProviderName {
  return (PROVIDERS as readonly string[]).includes(scheme);
}
