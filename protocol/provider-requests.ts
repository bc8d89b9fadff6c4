/**
 * A provider's webhook request as a verifier meets it, before any token is known: which headers
 * carry its event, its delivery id and its signature, what bytes the signature covers, and which
 * configured repositories the body's claim can name. Pure functions over headers and bytes; a
 * verifier in front of the receiver (the webhook relay) uses them to check a request for the same
 * tokens the receiver will, and to forward exactly the headers the receiver reads.
 */
import { createHash } from 'node:crypto';
import { parseStandardHeaders, verifyStandardWebhook } from './standard-webhooks';
import type { ClaimedRepository } from './provider-payloads';
import type { ProviderName } from './schemes';
import type { TokenOrKeys } from './token-keys';
import {
  BITBUCKET_SIGNATURE_HEADER,
  FORGEJO_SIGNATURE_HEADER,
  GITEA_SIGNATURE_HEADER,
  GITHUB_SIGNATURE_HEADER,
  GITLAB_TOKEN_HEADER,
  gitlabTokenMatches,
  parseHexSignature,
  parseHubSignature,
  verifyBodyHmac,
} from './provider-signatures';

/** The `/hooks/<path>` names the receiver serves provider webhooks at. Forgejo is Gitea's fork and sends Gitea's webhook. */
export const PROVIDER_WEBHOOK_PATHS = ['github', 'gitlab', 'gitea', 'forgejo', 'bitbucket'] as const;
export type ProviderWebhookPath = (typeof PROVIDER_WEBHOOK_PATHS)[number];

export function providerOfPath(path: ProviderWebhookPath): ProviderName {
  return path === 'forgejo' ? 'gitea' : path;
}

/** Reads one request header by its lower-case name. */
export type HeaderReader = (name: string) => string | undefined;

export interface ProviderHeaders {
  /** Event headers, the first present wins. */
  event: readonly string[];
  /** How the event header is named in an answer that says it is missing. */
  eventShown: string;
  /** Delivery-id headers, the first present wins. */
  delivery: readonly string[];
  /** Headers that sign (or carry the secret), in the order they are tried. */
  signature: readonly string[];
  /** The event that carries pushes: the only one that runs anything. */
  push: string;
  /** The event a provider sends to test a new webhook; answered once verified, nothing runs. */
  ping?: string;
}

const WEBHOOK_SIGNING = ['webhook-id', 'webhook-timestamp', 'webhook-signature'];

const PROVIDER_HEADERS: Record<ProviderName, ProviderHeaders> = {
  github: {
    event: ['x-github-event'],
    eventShown: 'X-GitHub-Event',
    delivery: ['x-github-delivery'],
    signature: [GITHUB_SIGNATURE_HEADER],
    push: 'push',
    ping: 'ping',
  },
  gitlab: {
    event: ['x-gitlab-event'],
    eventShown: 'X-Gitlab-Event',
    delivery: ['webhook-id', 'idempotency-key', 'x-gitlab-event-uuid'],
    signature: [...WEBHOOK_SIGNING, GITLAB_TOKEN_HEADER],
    push: 'Push Hook',
  },
  gitea: {
    event: ['x-forgejo-event', 'x-gitea-event'],
    eventShown: 'X-Gitea-Event',
    delivery: ['x-forgejo-delivery', 'x-gitea-delivery'],
    signature: [FORGEJO_SIGNATURE_HEADER, GITEA_SIGNATURE_HEADER],
    push: 'push',
  },
  bitbucket: {
    event: ['x-event-key'],
    eventShown: 'X-Event-Key',
    delivery: ['x-request-uuid'],
    signature: [BITBUCKET_SIGNATURE_HEADER],
    push: 'repo:push',
  },
};

/** The headers a provider's webhook carries its event, delivery id and signature in. */
export function providerHeaders(provider: ProviderName): Readonly<ProviderHeaders> {
  return PROVIDER_HEADERS[provider];
}

/** Every header the receiver reads from this provider's webhook, besides the body's content type. */
export function providerRequestHeaders(provider: ProviderName): string[] {
  const { event, delivery, signature } = PROVIDER_HEADERS[provider];
  return [...new Set(['content-type', 'user-agent', ...event, ...delivery, ...signature])];
}

/**
 * The id of a delivery whose provider sent none: a digest of its payload, so the same payload
 * sent again is the same delivery.
 */
export function payloadDeliveryId(payload: Buffer): string {
  return `sha256:${createHash('sha256').update(payload).digest('hex').slice(0, 32)}`;
}

/** The provider's id for this delivery (a redelivery repeats it), when sent. */
export function providerDeliveryId(provider: ProviderName, header: HeaderReader): string | undefined {
  return first(header, PROVIDER_HEADERS[provider].delivery)?.value;
}

/** A request whose signature has the right shape; no token has been tried yet. */
export interface SignedProviderRequest {
  provider: ProviderName;
  /** The provider's event name as sent (`push`, `Push Hook`, `repo:push`), when sent. */
  event?: string;
  /** True for the provider's test event (GitHub's `ping`). */
  ping: boolean;
  /** The JSON payload's bytes: the body, or a form-encoded body's `payload` field. */
  payload: Buffer;
  /** The header that signs, for logs. */
  signatureName: string;
  /** True when the signature (or the secret sent) is right for this token. */
  verify(token: TokenOrKeys): boolean;
}

/** Why a request cannot be checked against any token: unsigned, or a signature of the wrong shape. */
export interface UnsignedProviderRequest {
  unsigned: string;
}

function first(header: HeaderReader, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = header(name);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

/**
 * The `payload` field of a form-encoded body (GitHub's and Gitea's
 * "application/x-www-form-urlencoded" content type): undefined when the body is not form-encoded,
 * null when the form has no such field.
 */
export function formPayloadField(contentType: string | undefined, body: Buffer): Buffer | null | undefined {
  if (!(contentType ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) return undefined;
  const payload = new URLSearchParams(body.toString('utf8')).get('payload');
  return payload === null ? null : Buffer.from(payload, 'utf8');
}

/**
 * The JSON payload of a body: the body itself, or the `payload` field of a form-encoded one
 * (GitHub's and Gitea's "application/x-www-form-urlencoded" content type). A form without that
 * field yields the body, which then names no repository.
 */
export function providerJsonPayload(contentType: string | undefined, body: Buffer): Buffer {
  return formPayloadField(contentType, body) ?? body;
}

/**
 * A provider's signature, read from the headers alone: which header signs, and — once the body is
 * read — the payload and the check of a token against it.
 */
export interface ProviderSignature {
  signatureName: string;
  /**
   * `payload`, when given, is the body's JSON payload as providerJsonPayload reads it, already
   * taken out by the caller, so a form-encoded body is not decoded a second time.
   */
  read(body: Buffer, payload?: Buffer): { payload: Buffer; verify(token: TokenOrKeys): boolean };
  /**
   * Set when the headers carry the secret itself (GitLab's X-Gitlab-Token): a token can be
   * checked before a byte of the body is read.
   */
  verifyWithoutBody?(token: TokenOrKeys): boolean;
}

/** The canonical spelling of a signing header, for logs. */
const SIGNATURE_NAMES: Record<string, string> = {
  [GITHUB_SIGNATURE_HEADER]: 'X-Hub-Signature-256',
  [BITBUCKET_SIGNATURE_HEADER]: 'X-Hub-Signature',
  [GITEA_SIGNATURE_HEADER]: 'X-Gitea-Signature',
  [FORGEJO_SIGNATURE_HEADER]: 'X-Forgejo-Signature',
  [GITLAB_TOKEN_HEADER]: 'X-Gitlab-Token',
};

/**
 * Reads a provider's signature headers as the receiver does, before the body: GitHub and
 * Bitbucket sign the raw body, Gitea/Forgejo the JSON payload; GitLab either signs with its
 * signing token (Standard Webhooks, chosen by `webhook-signature` being present) or sends its
 * secret token as is.
 */
export function providerSignature(provider: ProviderName, header: HeaderReader): ProviderSignature | UnsignedProviderRequest {
  const payloadOf = (body: Buffer) => providerJsonPayload(header('content-type'), body);
  if (provider === 'gitlab') {
    const signature = header('webhook-signature');
    if (signature !== undefined) {
      const parsed = parseStandardHeaders(header('webhook-id'), header('webhook-timestamp'), signature);
      if ('header' in parsed) return { unsigned: `${parsed.header} ${parsed.reason}` };
      return {
        signatureName: 'webhook-signature',
        read: (body) => ({ payload: body, verify: (token) => verifyStandardWebhook(token, parsed, body) }),
      };
    }
    const secret = header(GITLAB_TOKEN_HEADER);
    if (secret === undefined) return { unsigned: 'no X-Gitlab-Token or webhook-signature' };
    const verify = (token: TokenOrKeys) => gitlabTokenMatches(token, secret);
    return { signatureName: 'X-Gitlab-Token', read: (body) => ({ payload: body, verify }), verifyWithoutBody: verify };
  }
  const names = PROVIDER_HEADERS[provider].signature;
  const sent = first(header, names);
  if (sent === undefined) return { unsigned: `no ${names.map((name) => SIGNATURE_NAMES[name] ?? name).join(' or ')}` };
  const signatureName = SIGNATURE_NAMES[sent.name] ?? sent.name;
  const hex = provider === 'gitea';
  const digest = hex ? parseHexSignature(sent.value) : parseHubSignature(sent.value);
  if (digest === undefined) return { unsigned: `${signatureName} is not ${hex ? '' : 'sha256='}<64 hex digits>` };
  return {
    signatureName,
    read(body, jsonPayload) {
      const payload = jsonPayload ?? payloadOf(body);
      const covered = hex ? payload : body;
      return { payload, verify: (token) => verifyBodyHmac(token, covered, digest) };
    },
  };
}

/** Headers and body read together: what a verifier that has the whole request at once needs. */
export function readProviderSignature(
  provider: ProviderName,
  header: HeaderReader,
  body: Buffer,
): SignedProviderRequest | UnsignedProviderRequest {
  const { event: eventHeaders, ping } = PROVIDER_HEADERS[provider];
  const event = first(header, eventHeaders)?.value.trim();
  const signature = providerSignature(provider, header);
  if ('unsigned' in signature) return signature;
  const { payload, verify } = signature.read(body);
  return {
    provider,
    ...(event ? { event } : {}),
    ping: ping !== undefined && event === ping,
    payload,
    signatureName: signature.signatureName,
    verify,
  };
}

/**
 * Whether a trigger's `repository` names the repository a payload claims, by the receiver's rule:
 * a name with a `/` must be the full name; one without matches the name, or the full name's last
 * segment where the display name differs from it (GitLab's `Diaspora` is `mike/diaspora`).
 */
export function triggerNamesRepository(triggerRepository: string, claimed: ClaimedRepository): boolean {
  if (triggerRepository.includes('/')) return triggerRepository === claimed.fullName;
  return triggerRepository === claimed.name || triggerRepository === claimed.fullName?.split('/').at(-1);
}
