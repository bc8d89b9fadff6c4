/**
 * Reading a provider webhook's headers before its body: the event, the delivery id, and the JSON
 * payload of a form-encoded body. A header the handler cannot go on without is a 400 naming it,
 * returned (not thrown).
 */
import type { IncomingMessage } from 'node:http';
import { formPayloadField } from '../../../protocol';
import { badRequest, type Rejection } from '../../errors';
import { header } from '../handler';

/** The first of these headers that is present, with the name it was found under. */
export function firstHeader(req: IncomingMessage, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = header(req, name);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

/** An event header the handler cannot go on without: a 400 naming it when it is missing. */
export function requiredEvent(req: IncomingMessage, names: readonly string[], shownName: string): string | Rejection {
  const found = firstHeader(req, names);
  if (found === undefined || found.value.trim() === '') return badRequest(`${shownName} is missing`, { header: shownName });
  return found.value.trim();
}

const DELIVERY_ID_SHAPE = /^[\x21-\x7e]{1,256}$/;

/** A delivery-id header, when sent; a malformed one is a 400 naming it. */
export function deliveryIdHeader(req: IncomingMessage, names: readonly string[]): string | Rejection | undefined {
  const found = firstHeader(req, names);
  if (found === undefined) return undefined;
  if (!DELIVERY_ID_SHAPE.test(found.value))
    return badRequest(`${found.name} must be 1 to 256 printable ASCII characters`, { header: found.name });
  return found.value;
}

/**
 * The JSON payload of the body: the body itself, or the `payload` field of a form-encoded body
 * (GitHub's and Gitea's "application/x-www-form-urlencoded" content type).
 */
export function jsonPayload(contentType: string | undefined, body: Buffer): Buffer {
  const payload = formPayloadField(contentType, body);
  if (payload === null) throw badRequest('payload: the form-encoded body has no payload field', { field: 'payload' });
  return payload ?? body;
}
