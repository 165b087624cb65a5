/**
 * The key_IDs a pair used in its last N epochs, lower-cased (protocol.md s3.4: a key_ID
 * is never used twice; the comparison is case-insensitive). Insertion-ordered, bounded.
 */
export class KeyIdMemory {
  readonly #max: number;
  readonly #set = new Set<string>();
  constructor(max: number) {
    this.#max = max;
  }
  has(keyId: string): boolean {
    return this.#set.has(keyId.toLowerCase());
  }
  add(keyId: string): void {
    const k = keyId.toLowerCase();
    this.#set.delete(k);
    this.#set.add(k);
    while (this.#set.size > this.#max) {
      const oldest = this.#set.values().next().value as string;
      this.#set.delete(oldest);
    }
  }
  get size(): number {
    return this.#set.size;
  }
}
