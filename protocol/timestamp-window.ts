/** Where a signed timestamp stands against the receiver's clock. */
export type WindowVerdict = 'ok' | 'too-old' | 'too-new';

export function checkTimestampWindow(
  timestampSeconds: number,
  nowSeconds: number,
  maxAgeSeconds: number,
  maxFutureSeconds: number,
): WindowVerdict {
  if (nowSeconds - timestampSeconds > maxAgeSeconds) return 'too-old';
  if (timestampSeconds - nowSeconds > maxFutureSeconds) return 'too-new';
  return 'ok';
}
