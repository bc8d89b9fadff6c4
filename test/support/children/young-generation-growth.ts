/**
 * A fresh process (V8's young generation as at start-up) that keeps allocating objects it holds on
 * to, the way a flood of accepts holds remembered ids, and prints the largest young generation
 * seen. Argument: the bound in bytes to set with boundYoungGeneration, or `none`.
 */
import { setImmediate as turn } from 'node:timers/promises';
import { getHeapSpaceStatistics } from 'node:v8';
import { boundYoungGeneration } from '../../../receiver/young-generation';

const newSpace = (): number => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;

async function main(): Promise<void> {
  const bound = process.argv[2];
  if (bound !== 'none') boundYoungGeneration(Number(bound));
  const held: { id: number; key: string }[] = [];
  let largest = newSpace();
  for (let round = 0; round < 300; round++) {
    for (let i = 0; i < 2000; i++) held.push({ id: round * 2000 + i, key: `key-${round}-${i}` });
    // A turn of the event loop, as between requests: what the collector reported is heard of.
    await turn();
    largest = Math.max(largest, newSpace());
  }
  process.stdout.write(`${JSON.stringify({ largest, held: held.length })}\n`);
}

void main();
