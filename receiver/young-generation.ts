/**
 * A bound on V8's young generation for the receiver's process. Under a flood of accepts V8 grows
 * it within the first second to its largest (32 MiB with Node's defaults), and gives that back
 * only once the process has been quiet for a while: a receiver that took one flood holds it long
 * after. Here, once a scavenge finds it at the bound, V8 is told not to grow it further
 * (`--semi-space-growth-factor`, which V8 reads at each growth; the largest size is fixed at
 * start-up, and a process started by `node receiver.js` or `triggler serve` has no say in its
 * flags), and told it may grow again once V8 has shrunk it below the bound. Past the bound the
 * cost is more scavenges, each as cheap as before: what survives one is what is in flight.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** The young generation's size past which it stops growing; one more doubling may happen before a scavenge is seen. */
export const YOUNG_GENERATION_BYTES = 8 * 1024 * 1024;

/** V8's own growth factor, restored below the bound. */
const V8_GROWTH_FACTOR = 2;

/** Holds the young generation near `bytes` from now on, for the whole process; the returned function lets it grow freely again. */
export function boundYoungGeneration(bytes = YOUNG_GENERATION_BYTES): () => void {
  let growing = true;
  const observer = new PerformanceObserver((list) => {
    const scavenged = list
      .getEntries()
      .some((entry) => (entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR);
    if (!scavenged) return;
    const size = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
    const grow = size < bytes;
    if (grow === growing) return;
    growing = grow;
    setFlagsFromString(`--semi-space-growth-factor=${grow ? V8_GROWTH_FACTOR : 1}`);
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    observer.disconnect();
    if (!growing) setFlagsFromString(`--semi-space-growth-factor=${V8_GROWTH_FACTOR}`);
  };
}
