/**
 * Restart back-off for a crashing language server: 1 s, 2 s, 4 s … capped; gives up after
 * `maxRestarts` crashes within `windowMs`. Pure (time is passed in).
 */
export class Backoff {
  private crashes: number[] = [];

  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 30_000,
    private readonly maxRestarts = 5,
    private readonly windowMs = 3 * 60_000,
  ) {}

  /** Records a crash at `now`; returns the delay before restarting, or undefined to give up. */
  next(now: number): number | undefined {
    this.crashes = this.crashes.filter((t) => now - t <= this.windowMs);
    this.crashes.push(now);
    const n = this.crashes.length;
    if (n > this.maxRestarts) {
      return undefined;
    }
    return Math.min(this.maxMs, this.baseMs * 2 ** (n - 1));
  }

  reset(): void {
    this.crashes = [];
  }
}
