import type { RealService } from "./process.js";

/**
 * Starts servers one after another. Each is handed to `onStarted` (where a
 * test registers its cleanup) before the next one starts; if a start fails,
 * the ones already running are closed, newest first, before the error is
 * rethrown — a failed start never leaves another server behind.
 */
export async function startPeers<T extends RealService>(
  starters: ReadonlyArray<() => Promise<T>>,
  onStarted: (service: T) => void = () => {},
): Promise<T[]> {
  const started: T[] = [];
  try {
    for (const start of starters) {
      const service = await start();
      started.push(service);
      onStarted(service);
    }
    return started;
  } catch (error) {
    for (const service of started.reverse()) await service.close().catch(() => {});
    throw error;
  }
}
