// A small typed event emitter that runs in browsers, Node and workerd alike (no node:events), so the client
// classes expose the same `on(...)` API everywhere.

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Resolves with the next value of `event` that passes `where`. */
  once<K extends keyof Events>(event: K, where: (value: Events[K]) => boolean = () => true): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (value) => {
        if (!where(value)) return;
        off();
        resolve(value);
      });
    });
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as Listener<Events[K]>)(value);
      } catch (error) {
        // One failing listener must not stop the others or the client's own bookkeeping.
        console.error(`pulsecast client: a '${String(event)}' listener threw:`, error);
      }
    }
  }
}
