/**
 * The delivery listener as the receiver runs it, in its own process or in each worker: listening,
 * its share of a reload, and refusing then draining requests when the receiver stops.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import { Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ReceiverConfig } from './config/schema';
import { TriggerTable } from './config/trigger-table';
import type { DeliverySink } from './delivery';
import type { RecentDeliveries } from './http/delivery-recorder';
import { createDeliveryServer, type DeliveryServer } from './http/delivery-server';
import { prepareThenCommit } from './lifecycle';
import { ReceiverTokens, type TokenSourceOptions } from './tokens/receiver-tokens';

export async function listen(server: Server, host: string, port: number): Promise<string> {
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${server instanceof TlsServer ? 'https' : 'http'}://${shownHost}:${address.port}`;
}

/** A config's triggers, built once: the token sources and the delivery listener share them. */
export function triggerTableOf(config: ReceiverConfig): TriggerTable {
  return new TriggerTable(config.triggers, config.signature.iterations);
}

/**
 * The delivery side of a worker: its triggers, its own token sources, and the listener (not yet
 * listening), recording what it answers in `recent` when given.
 */
export async function openDeliverySide(
  config: ReceiverConfig,
  sink: DeliverySink,
  logger: Logger,
  tokenOptions: TokenSourceOptions,
  recent?: RecentDeliveries,
): Promise<{ deliveries: DeliveryServer; tokens: ReceiverTokens }> {
  const triggers = triggerTableOf(config);
  const tokens = await ReceiverTokens.open(config, triggers, tokenOptions);
  const now = tokenOptions.now ?? Date.now;
  const deliveries = createDeliveryServer({ config, triggers, tokens, sink: recent?.watching(sink) ?? sink, logger, now }, recent);
  return { deliveries, tokens };
}

/**
 * A worker's reload. With a config: its triggers, tokens and certificate, none in use unless all
 * can be had. Without one: the token sources and the certificate in use are read again.
 */
export async function reloadDeliverySide(
  deliveries: DeliveryServer,
  tokens: ReceiverTokens,
  next: ReceiverConfig | undefined,
  tokenOptions: TokenSourceOptions,
): Promise<void> {
  if (!next) {
    await tokens.reload();
    deliveries.reloadCertificate();
    return;
  }
  // Both are prepared (the new token sources opened, the certificate read and checked) before either is used.
  const triggers = triggerTableOf(next);
  await prepareThenCommit([
    () => tokens.prepareReconfigure(next, triggers, tokenOptions),
    () => deliveries.prepareReconfigure(triggers, next.listen.tls),
  ]);
}

/** How long requests in flight may take to be answered once the receiver stops. */
const DRAIN_MS = 5000;

/** Answers 503 to new requests and waits (up to 5 s) for those in flight; still listening. */
export async function refuseDeliveries(deliveries: DeliveryServer): Promise<void> {
  deliveries.refuseNewRequests();
  deliveries.server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([deliveries.drained(), new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
  clearTimeout(timer);
}

/** Answers 503 to new requests, lets in-flight ones finish (up to 5 s), then closes the listener. */
export async function drainDeliveryServer(deliveries: DeliveryServer): Promise<void> {
  await refuseDeliveries(deliveries);
  const closed = once(deliveries.server, 'close');
  deliveries.server.close();
  deliveries.server.closeAllConnections();
  await closed;
}
