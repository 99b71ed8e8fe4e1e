/** What a `Guard.on*` registration returns, as in cockatiel. */
export interface Disposable {
  dispose(): void;
}

/** A listener list for one per-instance event; a throwing listener never breaks the guard. */
export class GuardEvent<T> {
  readonly #listeners = new Set<(event: T) => void>();

  /** Adds a listener; `dispose()` removes it. */
  readonly subscribe = (listener: (event: T) => void): Disposable => {
    // A wrapper per registration, so the same function may be added twice and disposed once.
    const entry = (event: T) => listener(event);
    this.#listeners.add(entry);
    return { dispose: () => this.#listeners.delete(entry) };
  };

  get hasListeners(): boolean {
    return this.#listeners.size > 0;
  }

  emit(event: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        // Surface it as an uncaught error later, not inside the connect path.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
