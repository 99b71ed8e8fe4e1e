/**
 * SplitMix32-style integer generator: a seed gives the same workload on every
 * machine and Node version (Math.random cannot be seeded).
 */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in (0, 1): never 0, so -log(u) is finite. */
  nextUnit(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  /** Exponential with the given mean. */
  nextExponential(mean: number): number {
    return -Math.log(this.nextUnit()) * mean;
  }
}
