/**
 * Signature verification off the intake thread: a pool of worker threads, each with its own FastVerifier.
 * A check goes to the worker with the fewest checks outstanding (FastVerifier keeps no per-device tables, so
 * no device affinity is needed); checks asked for in the same turn of the event loop go to a worker as one
 * message. The EIP-712 digest is computed here (the intake thread has time to spare), the workers do the curve
 * arithmetic. With several messages in flight (several MQTT connections) the workers run in parallel with the
 * intake thread.
 */
import { cpus } from "node:os";
import { Worker } from "node:worker_threads";

import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../../sdk/protocol/index.js";
import type { SignatureCheck } from "./judge.js";
import type { Logger } from "../log.js";
import { ItemDigests } from "./signature.js";
import type { CheckRequest } from "./worker.js";

interface Pending {
  resolve(ok: boolean): void;
  reject(error: Error): void;
}

/**
 * Verdicts per answer message from a worker: small enough that the first messages of a large batch go on to
 * their commit while the rest are checked, large enough that the messages cost little. With one answer per
 * batch, intake ran in lock-step (every message in flight waited for the whole batch, then all committed at
 * once, then the next batch arrived): 2,300–3,900 readings/s in the benchmark's shared row; with 8, 4,100–4,600.
 */
export const ANSWER_EVERY = 8;

/**
 * Workers for `"auto"`: one per core but one, which the intake thread (MQTT, parsing, SQLite) and the store
 * writer thread need (on 2 cores: 1 worker measured ~35 % faster than 2, npm run bench:oracle).
 */
export function defaultVerifyWorkers(): number {
  return Math.max(1, cpus().length - 1);
}

export class VerifyPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly owner = new Map<number, number>();
  /** Checks outstanding per worker, and checks not yet posted. */
  private readonly load: number[] = [];
  private readonly outbox: CheckRequest[][] = [];
  private flushScheduled = false;
  private readonly digests: ItemDigests;
  private nextId = 1;
  private closed = false;
  private answersReceived = 0;
  private readonly spawn: (index: number) => Worker;

  constructor(domain: ColdChainDomain, size: number, cacheSize: number, log?: Logger) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`verify pool size must be >= 1, got ${size}`);
    this.digests = new ItemDigests(domain);
    // The worker is TypeScript: make sure it runs with the tsx loader (inherited when this process has it).
    const url = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);
    const execArgv =
      import.meta.url.endsWith(".ts") && !hasTsx(process.execArgv)
        ? [...process.execArgv, "--import", "tsx"]
        : process.execArgv;
    this.spawn = (i: number): Worker => {
      const worker = new Worker(url, {
        execArgv,
        workerData: {
          chainId: domain.chainId,
          verifyingContract: domain.verifyingContract,
          cacheSize,
          answerEvery: ANSWER_EVERY,
        },
      });
      worker.unref();
      worker.on("message", (m: { ids: number[]; oks: boolean[] }) => {
        this.answersReceived++;
        m.ids.forEach((id, k) => {
          const p = this.pending.get(id);
          if (p === undefined) return;
          this.pending.delete(id);
          this.owner.delete(id);
          this.load[i] = (this.load[i] ?? 1) - 1;
          p.resolve(m.oks[k] === true);
        });
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
    for (let i = 0; i < size; i++) {
      this.workers.push(this.spawn(i));
      this.load.push(0);
      this.outbox.push([]);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Answer messages received from the workers so far (each carries up to ANSWER_EVERY verdicts). */
  get answers(): number {
    return this.answersReceived;
  }

  /** The SignatureCheck the intake uses. */
  readonly check: SignatureCheck = (item: SignedItem, key: DeviceVerificationKey) => {
    if (this.closed) return Promise.reject(new Error("the signature pool is closed"));
    let index = 0;
    for (let i = 1; i < this.load.length; i++) if ((this.load[i] ?? 0) < (this.load[index] ?? 0)) index = i;
    const outbox = this.outbox[index];
    if (outbox === undefined) return Promise.reject(new Error("no signature worker"));
    let digest: Uint8Array;
    try {
      digest = this.digests.of(item);
    } catch {
      return Promise.resolve(false); // out-of-range fields (the intake's decoder rejects them before): not valid
    }
    const id = this.nextId++;
    return new Promise<boolean>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.owner.set(id, index);
      this.load[index] = (this.load[index] ?? 0) + 1;
      outbox.push({ id, digest, signature: item.signature, key });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  };

  /** Posts the checks asked for since the last flush, one message per worker. */
  private flush(): void {
    this.flushScheduled = false;
    this.outbox.forEach((checks, i) => {
      if (checks.length === 0) return;
      this.outbox[i] = [];
      if (this.closed) return;
      this.workers[i]?.postMessage({ checks });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error("the signature pool is closed"));
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private failWorker(index: number, error: Error): void {
    this.load[index] = 0;
    this.outbox[index] = [];
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
