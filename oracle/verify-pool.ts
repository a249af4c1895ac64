/**
 * Signature verification off the intake thread: a pool of worker threads, each with its own FastVerifier.
 * A device always goes to the same worker (by device id), so its cached key table is built once. With several
 * messages in flight (several MQTT connections) the workers run in parallel with the intake thread.
 */
import { cpus } from "node:os";
import { Worker } from "node:worker_threads";

import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../sdk/protocol/index.js";
import type { SignatureCheck } from "./intake.js";
import type { Logger } from "./log.js";

interface Pending {
  resolve(ok: boolean): void;
  reject(error: Error): void;
}

/** Workers for `"auto"`: one per core. */
export function defaultVerifyWorkers(): number {
  return Math.max(1, cpus().length);
}

export class VerifyPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly owner = new Map<number, number>();
  private nextId = 1;
  private closed = false;
  private readonly spawn: (index: number) => Worker;

  constructor(domain: ColdChainDomain, size: number, cacheSize: number, log?: Logger) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`verify pool size must be >= 1, got ${size}`);
    // The worker is TypeScript: make sure it runs with the tsx loader (inherited when this process has it).
    const url = new URL(import.meta.url.endsWith(".ts") ? "./verify-worker.ts" : "./verify-worker.js", import.meta.url);
    const execArgv =
      import.meta.url.endsWith(".ts") && !hasTsx(process.execArgv)
        ? [...process.execArgv, "--import", "tsx"]
        : process.execArgv;
    this.spawn = (i: number): Worker => {
      const worker = new Worker(url, {
        execArgv,
        workerData: { chainId: domain.chainId, verifyingContract: domain.verifyingContract, cacheSize },
      });
      worker.unref();
      worker.on("message", (m: { id: number; ok: boolean }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.owner.delete(m.id);
        p?.resolve(m.ok);
      });
      worker.on("error", (error) => {
        log?.error({ err: error.message, worker: i }, "signature worker failed; starting a new one");
      });
      worker.on("exit", (code) => {
        if (this.closed) return;
        // Checks it held fail (their messages stay unacknowledged and come again); a new worker takes over.
        this.failWorker(i, new Error(`signature worker ${i} exited with code ${code}`));
        this.workers[i] = this.spawn(i);
      });
      return worker;
    };
    for (let i = 0; i < size; i++) this.workers.push(this.spawn(i));
  }

  get size(): number {
    return this.workers.length;
  }

  /** The SignatureCheck the intake uses. */
  readonly check: SignatureCheck = (item: SignedItem, key: DeviceVerificationKey) => {
    if (this.closed) return Promise.reject(new Error("the signature pool is closed"));
    const deviceId = item.kind === "reading" ? item.reading.deviceId : item.window.deviceId;
    const index = Number(deviceId % BigInt(this.workers.length));
    const worker = this.workers[index];
    if (worker === undefined) return Promise.reject(new Error("no signature worker"));
    const id = this.nextId++;
    return new Promise<boolean>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.owner.set(id, index);
      worker.postMessage({ id, item, key });
    });
  };

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error("the signature pool is closed"));
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private failWorker(index: number, error: Error): void {
    for (const [id, w] of this.owner) {
      if (w !== index) continue;
      this.pending.get(id)?.reject(error);
      this.pending.delete(id);
      this.owner.delete(id);
    }
  }
}

function hasTsx(execArgv: readonly string[]): boolean {
  return execArgv.some(
    (a, i) => a.includes("tsx") && (i === 0 || execArgv[i - 1] === "--import" || a.startsWith("--import")),
  );
}
