// Where sealed state lives: the daemon implements SealedBlobStore on its level store; tests use
// MemoryBlobStore. Blobs are opaque to the host (sealed by the enclave, or ciphertext chunks that
// the sealed data key authenticates), so the host can lose them or roll them back, never read or
// alter them undetected. Keys are short ASCII paths under `enclave/`.

export interface SealedBlobStore {
  get: (key: string) => Promise<Uint8Array | undefined>
  put: (key: string, blob: Uint8Array) => Promise<void>
  delete: (key: string) => Promise<void>
}

/** An in-memory SealedBlobStore (tests, and nodes that accept losing tasks on restart). */
export class MemoryBlobStore implements SealedBlobStore {
  readonly blobs = new Map<string, Uint8Array>()
  async get (key: string): Promise<Uint8Array | undefined> {
    const b = this.blobs.get(key)
    return b === undefined ? undefined : Uint8Array.from(b)
  }
  async put (key: string, blob: Uint8Array): Promise<void> { this.blobs.set(key, Uint8Array.from(blob)) }
  async delete (key: string): Promise<void> { this.blobs.delete(key) }
}
