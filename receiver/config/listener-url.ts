/** A listener's base URL from its host and port: an IPv6 host goes in brackets. */
export function listenerUrl(host: string, port: number, tls: boolean): string {
  return `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
