// The frame bookkeeping every WebSocket test client shares (rooms and inboxes; in workerd and in Node):
// frames are checked and queued as they arrive, and a test waits for the next one by type, with a clear
// message on timeout or close. Web-standard only, so tests inside workerd import it too.

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface FrameQueue<F extends { type: string }> {
  /** every frame received so far, in order (batches unpacked by the caller's parse) */
  received: F[];
  /** raw messages received (to see batching) */
  rawCount(): number;
  /**
   * The next not-yet-taken frame of `type` matching `where`, skipping (and keeping) other frames; or, in strict
   * mode, the very next frame, which must be of `type` (another type fails the test). `type` may list several types:
   * one wait for "whichever answer comes" (a pong or the error refusing the ping), so no losing waiter is left
   * behind to take a later frame or to fail the test when its own timer runs out.
   */
  next<T extends F["type"]>(type: T | readonly T[], where?: (f: Extract<F, { type: T }>) => boolean): Promise<Extract<F, { type: T }>>;
  /** waits for the close, then returns every frame not yet taken */
  rest(): Promise<F[]>;
  closed: Promise<CloseInfo>;
  /** feed: one raw message (parsed into zero or more frames; a frame off the protocol throws and fails every wait) */
  message(data: string): void;
  /** feed: the socket closed */
  close(info: CloseInfo): void;
}

export interface FrameQueueOptions<F> {
  /** checks a raw message against the published protocol and returns its frames (throws when it does not match) */
  parse(data: string): F[];
  /** strict: `next` takes frames strictly in order */
  strict?: boolean;
  timeoutMs?: number;
}

export function frameQueue<F extends { type: string }>(opts: FrameQueueOptions<F>): FrameQueue<F> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const received: F[] = [];
  const taken = new Set<number>();
  const waiters = new Set<() => void>();
  const wake = () => [...waiters].forEach((w) => w());
  let raw = 0;
  let closeInfo: CloseInfo | null = null;
  let parseError: Error | null = null;
  let resolveClosed!: (info: CloseInfo) => void;
  const closed = new Promise<CloseInfo>((resolve) => (resolveClosed = resolve));
  const shown = () => JSON.stringify(received).slice(0, 600);

  /** The frame `next` should return now, undefined to keep waiting, or an Error to fail with. */
  const pick = (types: readonly string[], where?: (f: never) => boolean): number | Error | undefined => {
    if (opts.strict) {
      const index = received.findIndex((_, i) => !taken.has(i));
      if (index < 0) return undefined;
      const frame = received[index]!;
      return types.includes(frame.type) ? index : new Error(`expected a '${types.join("' or '")}' frame, got ${JSON.stringify(frame)}`);
    }
    const index = received.findIndex((f, i) => !taken.has(i) && types.includes(f.type) && (!where || where(f as never)));
    return index >= 0 ? index : undefined;
  };

  return {
    received,
    rawCount: () => raw,
    closed,
    next(type, where) {
      const types: readonly string[] = typeof type === "string" ? [type] : type;
      const label = types.join("' or '");
      return new Promise((resolve, reject) => {
        const check = () => {
          if (parseError) return finish(() => reject(parseError));
          const found = pick(types, where as never);
          if (found instanceof Error) return finish(() => reject(found));
          if (found !== undefined) {
            taken.add(found);
            return finish(() => resolve(received[found] as never));
          }
          if (closeInfo) finish(() => reject(new Error(`socket closed (${closeInfo!.code} ${closeInfo!.reason}) while waiting for a '${label}' frame; got ${shown()}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no matching '${label}' frame within ${timeoutMs} ms; got ${shown()}`))), timeoutMs);
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async rest() {
      await closed;
      const out = received.filter((_, i) => !taken.has(i));
      received.forEach((_, i) => taken.add(i));
      return out;
    },
    message(data) {
      raw++;
      try {
        received.push(...opts.parse(data));
      } catch (error) {
        parseError ??= new Error(`a frame does not match the protocol: ${error instanceof Error ? error.message : String(error)}; frame: ${data.slice(0, 300)}`);
        wake();
        // Also thrown where the socket delivered it, so a mismatch fails the run even when nobody waits.
        throw parseError;
      }
      wake();
    },
    close(info) {
      closeInfo = info;
      resolveClosed(info);
      wake();
    },
  };
}
