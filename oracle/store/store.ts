/**
 * The durable store: one SQLite file (node:sqlite, WAL). Every accepted item is committed here before its
 * MQTT acknowledgement, and every transaction attempt before its broadcast, so a crash at any point loses
 * nothing and a restart resumes from this file alone.
 *
 * Tables:
 * - `items`: one signed item (reading or window) per row, in the binary MQTT form, with its observation times
 *   (first and last sample) and, protocol v2, its predecessor's (`previous_observed_at`); state
 *   pending → batched → recorded | skipped (or back to pending when its batch is dropped, or when the contract
 *   skipped it with a retryable reason: `CustodyPending`, `SequenceGap`), or `unrelayable` (below).
 *   An item the anchor session caught up (oracle/intake/anchor.ts) while the instance is one of several in a share
 *   group carries `relay_after` (unix ms): it is left out of batches until then (its share-group copy is another
 *   instance's to relay); NULL for every other item. Persistent, so a restart does not relay it early.
 * - `observations`: one row per (device, observation time) of every stored protocol v2 item (a window: one per
 *   sample), UNIQUE: a device's reading of one time is stored once. Protocol v2 chains a device's readings by time,
 *   not by sequence (a device that lost its state may count its sequences from 0 again).
 * - `readings`: one row per (device, sequence) of the protocol v1 items of an older store (kept, no longer used).
 * - `batches` and `attempts`: each batch transaction, and every signed attempt of it (nonce, fees, raw tx, hash).
 * - `devices`: the registry cache (devices the registry knows); `meta`: sync cursors.
 * - `set_aside`: MQTT messages that could not be judged when they came (the registry unreachable, look-ups of new
 *   devices rate-limited or slow, or queued behind such messages), kept as received (topic and payload) until the
 *   set-aside retrier judges them (oracle/verification/set-aside.ts); a row is deleted only after its verdict (the item stored,
 *   or a drop) is final.
 *
 * Protocol v1 items of a store written before protocol v2 (`protocol` 1: signed without `previousObservedAt`,
 * under EIP-712 version "1") cannot be relayed to a v2 contract: it verifies another digest and needs the
 * predecessor. They are never deleted: {@link Store.retireV1Pending} moves the pending ones to the state
 * `unrelayable` (skip reason `ProtocolV1`), where they stay as the evidence they are, and the relay reports them
 * (an error line and `coldchain_oracle_unrelayable_readings_total`); see docs/operations.md, "Upgrading to
 * protocol v2".
 *
 * Device ids are stored as decimal TEXT (uint64 does not fit SQLite's signed INTEGER).
 *
 * SQLite's own failures are reported as themselves ({@link storeError}): a {@link StoreError} naming the file,
 * SQLite's message and result code, and the kind of fault (`STORE_FULL` when the disk is full or the store reached
 * `store.maxSizeMb`). A failed transaction is rolled back only if SQLite has not already rolled it back itself (it
 * does on SQLITE_FULL and some I/O errors), so the report is never "cannot rollback - no transaction is active".
 */
import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { SQLInputValue, StatementSync } from "node:sqlite";

import { OracleError, StoreError, messageOf } from "../errors.js";
import type { StoreFault } from "../errors.js";

export type ItemState = "pending" | "batched" | "recorded" | "skipped" | "unrelayable";
export type BatchState = "sent" | "mined" | "confirmed" | "dropped" | "reverted";
export type KeyCurve = "secp256k1" | "p256";

/** The signed protocol of an item: 1 before `previousObservedAt`, 2 with it (docs/protocol.md). */
export type ItemProtocol = 1 | 2;

/** The skip reason of a protocol v1 item the oracle can no longer relay (state `unrelayable`). */
export const PROTOCOL_V1_REASON = "ProtocolV1";

/** A stored item. */
export interface StoredItem {
  readonly id: number;
  readonly deviceId: bigint;
  readonly firstSequence: number;
  readonly count: number;
  readonly kind: "reading" | "window";
  readonly curve: KeyCurve;
  readonly protocol: ItemProtocol;
  /** Observation time (unix seconds) of the reading, or of a window's first sample. */
  readonly firstObservedAt: number;
  /** Observation time of the reading, or of a window's last sample. */
  readonly lastObservedAt: number;
  /**
   * Observation time of the device's reading before this one (a window: before its first sample), 0 for the
   * device's first; null for a protocol v1 item, which does not carry it.
   */
  readonly previousObservedAt: number | null;
  /** The binary MQTT form (a one-item batch envelope). */
  readonly body: Uint8Array;
  readonly receivedAt: number;
  /** Unix ms before which the relay leaves it out of batches (an anchor copy, held); null: relayed when due. */
  readonly relayAfter: number | null;
  readonly state: ItemState;
  readonly batchId: number | null;
  readonly skipReason: string | null;
}

/** A batch transaction. */
export interface StoredBatch {
  readonly id: number;
  readonly state: BatchState;
  readonly nonce: number;
  readonly readingCount: number;
  readonly createdAt: number;
  readonly txHash: string | null;
  readonly blockNumber: number | null;
  readonly blockHash: string | null;
}

/** One signed attempt of a batch transaction. */
export interface StoredAttempt {
  readonly id: number;
  readonly batchId: number;
  readonly nonce: number;
  readonly maxFeePerGas: bigint;
  readonly maxPriorityFeePerGas: bigint;
  readonly gasLimit: bigint;
  readonly rawTx: string;
  readonly hash: string;
  readonly createdAt: number;
}

/** A new attempt to record. */
export type NewAttempt = Omit<StoredAttempt, "id" | "batchId">;

/** A cached registry entry. */
export interface CachedDevice {
  readonly deviceId: bigint;
  /** 0 none (unknown), 1 secp256k1, 2 P-256, as IDeviceRegistry.KeyType. */
  readonly keyType: number;
  readonly intervalSeconds: number;
  readonly revokedAtBlock: number;
  readonly signer: string;
  readonly qx: string;
  readonly qy: string;
  /** Observation time (unix seconds) from which this, the current, key verifies; 0 for a device's first key. */
  readonly keyValidFrom: number;
  /** Observation time from which the device is distrusted (readings at or after it refused); 0 while active. */
  readonly revokedFrom: number;
  readonly fetchedAt: number;
}

/** Outcome of {@link Store.insertItem}. */
export type InsertResult =
  { readonly ok: true; readonly id: number } | { readonly ok: false; readonly duplicate: true };

/** What an item's outcome in a confirmed batch is. */
export interface ItemOutcome {
  readonly itemId: number;
  /** undefined: recorded; else the contract's SkipReason name. */
  readonly skipReason: string | undefined;
  /**
   * The skip is not final (`CustodyPending`, `SequenceGap`: sdk/names.ts RETRYABLE_SKIP_REASONS): the item goes back
   * to pending, out of the batch, and is submitted again later; `skipReason` is not stored.
   */
  readonly retry?: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  count INTEGER NOT NULL,
  kind TEXT NOT NULL,
  curve TEXT NOT NULL,
  body BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  batch_id INTEGER,
  skip_reason TEXT,
  protocol INTEGER NOT NULL,
  first_observed_at INTEGER NOT NULL,
  last_observed_at INTEGER NOT NULL,
  previous_observed_at INTEGER,
  relay_after INTEGER
);
CREATE INDEX IF NOT EXISTS items_by_state ON items (state, id);
CREATE INDEX IF NOT EXISTS items_by_batch ON items (batch_id);
CREATE TABLE IF NOT EXISTS readings (
  device_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  item_id INTEGER NOT NULL,
  UNIQUE (device_id, sequence)
);
CREATE TABLE IF NOT EXISTS observations (
  device_id TEXT NOT NULL,
  observed_at INTEGER NOT NULL,
  item_id INTEGER NOT NULL,
  UNIQUE (device_id, observed_at)
);
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  nonce INTEGER NOT NULL,
  reading_count INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  tx_hash TEXT,
  block_number INTEGER,
  block_hash TEXT,
  gas_used TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_state ON batches (state, nonce);
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL,
  nonce INTEGER NOT NULL,
  max_fee TEXT NOT NULL,
  max_priority_fee TEXT NOT NULL,
  gas_limit TEXT NOT NULL,
  raw_tx TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_batch ON attempts (batch_id, id);
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  key_type INTEGER NOT NULL,
  interval_seconds INTEGER NOT NULL,
  revoked_at_block INTEGER NOT NULL,
  signer TEXT NOT NULL,
  qx TEXT NOT NULL,
  qy TEXT NOT NULL,
  fetched_at INTEGER NOT NULL,
  key_valid_from INTEGER NOT NULL DEFAULT 0,
  revoked_from INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS set_aside (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  device_id TEXT,
  reason TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS set_aside_due ON set_aside (next_attempt_at, id);
`;

/** A message set aside: stored as received, judged later (oracle/verification/set-aside.ts). */
export interface SetAsideMessage {
  readonly id: number;
  readonly topic: string;
  readonly payload: Uint8Array;
  /** The device of the payload, when it decoded (decimal id), for logs. */
  readonly deviceId: string | null;
  /** Why it could not be judged when it came (metrics.ts SET_ASIDE_REASONS). */
  readonly reason: string;
  readonly receivedAt: number;
  /** Times it was tried again and still could not be judged. */
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
}

/** A message to set aside. */
export type NewSetAsideMessage = Pick<SetAsideMessage, "topic" | "payload" | "deviceId" | "reason" | "receivedAt">;

type Row = Record<string, SQLInputValue>;

/**
 * An item to store (see `insertItems`): a protocol v2 item before the store gives it an id and a state. A window's
 * samples are `intervalSeconds` apart (0 for a reading).
 */
export type NewItem = Omit<
  StoredItem,
  "id" | "state" | "batchId" | "skipReason" | "protocol" | "lastObservedAt" | "previousObservedAt" | "relayAfter"
> & {
  readonly intervalSeconds: number;
  readonly previousObservedAt: number;
  /** An anchor copy held back: not relayed before this (unix ms); absent for an ordinary item. */
  readonly relayAfter?: number;
};

/** The observation times of an item's readings (a window: one per sample). */
function observationTimes(item: NewItem): number[] {
  return Array.from({ length: item.count }, (_, i) => item.firstObservedAt + i * item.intervalSeconds);
}

/** The oracle's SQLite store. Synchronous calls: each method is one short transaction. */
export class Store {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private pending: number;
  private setAsideRows: number;

  /**
   * Opens (or creates) the store. `maxSizeMb` (config `store.maxSizeMb`) caps the file through SQLite's
   * `max_page_count` on this connection: beyond it every write fails with SQLITE_FULL, as on a full disk.
   */
  constructor(
    readonly path: string,
    synchronous: "FULL" | "NORMAL" = "FULL",
    private readonly maxSizeMb?: number,
  ) {
    try {
      this.db = new DatabaseSync(path);
      // busy_timeout first: opening a WAL file left by a killed process runs recovery, which waits for readers.
      this.db.exec(`PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`);
      if (maxSizeMb !== undefined) {
        const pageSize = Number(this.db.prepare("PRAGMA page_size").get()?.page_size ?? 4096);
        this.db.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor((maxSizeMb * 1024 * 1024) / pageSize))}`);
      }
      this.migrate();
      this.db.exec(SCHEMA);
      this.db.exec(
        `CREATE INDEX IF NOT EXISTS items_by_device ON items (device_id, first_observed_at);
         CREATE INDEX IF NOT EXISTS items_v1_pending ON items (id) WHERE state = 'pending' AND protocol = 1;
         CREATE INDEX IF NOT EXISTS items_relay_after ON items (relay_after)
           WHERE state = 'pending' AND relay_after IS NOT NULL;`,
      );
    } catch (cause) {
      const error = storeError(cause, path, "open", maxSizeMb);
      if (error instanceof StoreError) throw error;
      throw new OracleError(
        "STORE_FAILED",
        `cannot open the store ${path} (${messageOf(cause)}): check the path and its permissions`,
        { cause },
      );
    }
    this.pending = Number(this.one("SELECT COALESCE(SUM(count), 0) AS n FROM items WHERE state = 'pending'")?.n ?? 0);
    this.setAsideRows = Number(this.one("SELECT COUNT(*) AS n FROM set_aside")?.n ?? 0);
  }

  /**
   * Brings a store of an earlier version up to date (before the schema's `CREATE ... IF NOT EXISTS`, which then
   * adds what is missing: a fresh file gets the schema whole).
   * - Keys bound to time: the device cache gained the current key's validity and the distrust time; its rows of
   *   before are dropped (a cache: each device is read again).
   * - Protocol v2: items gained their protocol and observation times. Every item of before is protocol v1; its
   *   observation times are read from its stored body (the v1 binary form), its predecessor stays unknown (NULL).
   *   Nothing is deleted: the pending ones are retired as unrelayable by the relay ({@link retireV1Pending}).
   * - Anchor hold: items gained `relay_after` (NULL for every item of before: relayed as they were).
   * Each step is recognised by the columns it adds, so a store of any earlier version takes every step it lacks.
   */
  private migrate(): void {
    const columnsOf = (table: string): string[] =>
      (this.db.prepare(`PRAGMA table_info(${table})`).all() as { name?: unknown }[]).map((c) => String(c.name));
    const devices = columnsOf("devices");
    if (devices.length > 0 && !devices.includes("key_valid_from")) {
      this.db.exec(
        `BEGIN IMMEDIATE;
         DELETE FROM devices;
         ALTER TABLE devices ADD COLUMN key_valid_from INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE devices ADD COLUMN revoked_from INTEGER NOT NULL DEFAULT 0;
         COMMIT;`,
      );
    }
    const items = columnsOf("items");
    if (items.length > 0 && !items.includes("protocol")) {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        this.db.exec(
          `ALTER TABLE items ADD COLUMN protocol INTEGER NOT NULL DEFAULT 1;
           ALTER TABLE items ADD COLUMN first_observed_at INTEGER NOT NULL DEFAULT 0;
           ALTER TABLE items ADD COLUMN last_observed_at INTEGER NOT NULL DEFAULT 0;
           ALTER TABLE items ADD COLUMN previous_observed_at INTEGER;`,
        );
        const update = this.db.prepare("UPDATE items SET first_observed_at = ?, last_observed_at = ? WHERE id = ?");
        for (const row of this.db.prepare("SELECT id, body FROM items").all()) {
          const range = v1ObservationRange(row.body);
          if (range !== undefined) update.run(range.first, range.last, Number(row.id));
        }
        this.db.exec("COMMIT");
      } catch (error) {
        if (this.db.isTransaction) this.db.exec("ROLLBACK");
        throw error;
      }
    }
    if (items.length > 0 && !columnsOf("items").includes("relay_after")) {
      this.db.exec("ALTER TABLE items ADD COLUMN relay_after INTEGER");
    }
  }

  close(): void {
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
  }

  /**
   * Whether the store can write now: one small transaction (a row of `meta`). Throws the {@link StoreError} when
   * it cannot (the oracle checks with it at start and while the store reports failures). With `headroomBytes`, the
   * store must also have that much room to grow (free space on its filesystem and, with `maxSizeMb`, below the
   * cap): after a full disk a small write may fit again long before a group of messages does, and intake would
   * resume only to fail again.
   */
  probeWrite(now: number, headroomBytes = 0): void {
    if (headroomBytes > 0) {
      const room = this.room();
      if (room.bytes < headroomBytes) {
        const where = room.limit === "cap" ? `below store.maxSizeMb = ${this.maxSizeMb}` : "on its filesystem";
        throw new StoreError(
          "full",
          `the store ${this.path} cannot write: ${room.limit === "cap" ? "it is at its size limit" : "its disk is full"} ` +
            `(${formatBytes(room.bytes)} of room ${where}, less than the ${formatBytes(headroomBytes)} it needs to take ` +
            `messages again): ${room.limit === "cap" ? "raise store.maxSizeMb" : "free space on that disk"}`,
          { sqliteCode: "SQLITE_FULL", path: this.path },
        );
      }
    }
    this.transaction(() => {
      this.cached(
        "INSERT INTO meta (key, value) VALUES ('store_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ).run(String(now));
    });
  }

  /**
   * Room for the store to grow: the smaller of the free space on its filesystem and, with `maxSizeMb`, what is left
   * below the cap (free pages included), and which of the two it is.
   */
  room(): { bytes: number; limit: "disk" | "cap" } {
    const disk = freeBytesAt(this.path) ?? Number.MAX_SAFE_INTEGER;
    if (this.maxSizeMb === undefined) return { bytes: disk, limit: "disk" };
    const pragma = (name: string): number => Number(Object.values(this.db.prepare(`PRAGMA ${name}`).get() ?? {})[0]);
    const cap = (pragma("max_page_count") - pragma("page_count") + pragma("freelist_count")) * pragma("page_size");
    return cap < disk ? { bytes: Math.max(0, cap), limit: "cap" } : { bytes: disk, limit: "disk" };
  }

  /** Readings stored and not yet in a batch. */
  pendingReadings(): number {
    return this.pending;
  }

  /** Counts readings another connection to the same file stored (the intake's writer thread, store-writer.ts). */
  addPending(readings: number): void {
    this.pending += readings;
  }

  // -------------------------------------------------------------------------------------------
  // Intake
  // -------------------------------------------------------------------------------------------

  /**
   * Whether a reading of the device observed at any of `count` times `intervalSeconds` apart from `first` (a
   * reading: count 1) is stored.
   */
  hasAnyObservation(deviceId: bigint, first: number, count: number, intervalSeconds: number): boolean {
    if (count <= 1 || intervalSeconds <= 0) {
      return (
        this.cached("SELECT 1 AS hit FROM observations WHERE device_id = ? AND observed_at = ? LIMIT 1").get(
          deviceId.toString(),
          first,
        ) !== undefined
      );
    }
    return (
      this.cached(
        "SELECT 1 AS hit FROM observations WHERE device_id = ? AND observed_at BETWEEN ? AND ? AND (observed_at - ?) % ? = 0 LIMIT 1",
      ).get(deviceId.toString(), first, first + (count - 1) * intervalSeconds, first, intervalSeconds) !== undefined
    );
  }

  /** Stores an item and its observation times in one transaction; a stored observation makes it a duplicate. */
  insertItem(item: NewItem): InsertResult {
    const [result] = this.insertItems([item]);
    if (result === undefined) throw new OracleError("STORE_FAILED", "insertItems returned no result");
    return result;
  }

  /**
   * Stores several items in one transaction (one commit, one fsync: group commit), each with its own result;
   * an item of which a reading of the same time is already stored (also by an earlier item of the same call) is a
   * duplicate.
   */
  insertItems(items: readonly NewItem[]): InsertResult[] {
    return this.transaction(() => {
      const insertItem = this.cached(
        `INSERT INTO items (device_id, first_seq, count, kind, curve, body, received_at, state, protocol,
           first_observed_at, last_observed_at, previous_observed_at, relay_after)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 2, ?, ?, ?, ?)`,
      );
      const insertObservation = this.cached(
        "INSERT INTO observations (device_id, observed_at, item_id) VALUES (?, ?, ?)",
      );
      return items.map((item): InsertResult => {
        if (this.hasAnyObservation(item.deviceId, item.firstObservedAt, item.count, item.intervalSeconds)) {
          return { ok: false, duplicate: true };
        }
        const device = item.deviceId.toString();
        const times = observationTimes(item);
        const { lastInsertRowid } = insertItem.run(
          device,
          item.firstSequence,
          item.count,
          item.kind,
          item.curve,
          item.body,
          item.receivedAt,
          item.firstObservedAt,
          times.at(-1) ?? item.firstObservedAt,
          item.previousObservedAt,
          item.relayAfter ?? null,
        );
        const id = Number(lastInsertRowid);
        for (const t of times) insertObservation.run(device, t, id);
        this.pending += item.count;
        return { ok: true, id };
      });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Batching
  // -------------------------------------------------------------------------------------------

  /**
   * Pending protocol v2 items but those in `exclude` (the relay's held items: pending, held back for a while; see
   * Relay `held`) and the anchor copies held until after `now` (`relay_after`), device by device: the device whose
   * oldest pending item arrived first comes first, and each device's items come in observation order (so a batch cut
   * by `limit` never leaves out a device's earlier reading while taking a later one: the relay itself never makes a
   * gap in a device's chain). A later item of a device whose earlier one is held is returned: the pre-flight finds
   * whether the chain has its predecessor (another instance relayed it) or holds it too (`SequenceGap`, no gas).
   */
  pendingItems(limit: number, exclude: readonly number[] = [], now: number = Date.now()): StoredItem[] {
    const excluded = exclude.length === 0 ? "" : "AND id NOT IN (SELECT value FROM json_each(?))";
    const params: SQLInputValue[] = exclude.length === 0 ? [now] : [now, JSON.stringify(exclude)];
    return this.all(
      `WITH p AS (SELECT * FROM items WHERE state = 'pending' AND protocol = 2
                    AND (relay_after IS NULL OR relay_after <= ?) ${excluded}),
            heads AS (SELECT device_id, MIN(id) AS head FROM p GROUP BY device_id)
       SELECT p.* FROM p JOIN heads USING (device_id) ORDER BY heads.head, p.first_observed_at, p.id LIMIT ?`,
      ...params,
      limit,
    ).map(toItem);
  }

  /**
   * When the oldest pending protocol v2 item, but those in `exclude` and the anchor copies held after `now` (see
   * {@link pendingItems}), became due: its receivedAt, or for an anchor copy whose hold ended, its `relay_after`.
   */
  oldestPendingAt(exclude: readonly number[] = [], now: number = Date.now()): number | undefined {
    const excluded = exclude.length === 0 ? "" : "AND id NOT IN (SELECT value FROM json_each(?))";
    const params: SQLInputValue[] = exclude.length === 0 ? [] : [JSON.stringify(exclude)];
    const ordinary = this.one(
      `SELECT received_at AS at FROM items WHERE state = 'pending' AND protocol = 2 AND relay_after IS NULL ${excluded}
       ORDER BY id LIMIT 1`,
      ...params,
    );
    const released = this.one(
      `SELECT MIN(MAX(received_at, relay_after)) AS at FROM items
       WHERE state = 'pending' AND protocol = 2 AND relay_after IS NOT NULL AND relay_after <= ? ${excluded}`,
      now,
      ...params,
    );
    return minOf(ordinary?.at, released?.at);
  }

  /** Pending readings of anchor copies held after `now` (`relay_after`): left out of batches until then. */
  anchorHeldReadings(now: number): number {
    return Number(
      this.cached(
        "SELECT COALESCE(SUM(count), 0) AS n FROM items WHERE state = 'pending' AND relay_after IS NOT NULL AND relay_after > ?",
      ).get(now)?.n ?? 0,
    );
  }

  /**
   * Whether a pending anchor copy holds a reading of the device observed from `first` to `last` (a read: the common
   * duplicate is no anchor copy, and a write would wait for the intake's commits).
   */
  holdsAnchorCopy(deviceId: bigint, first: number, last: number): boolean {
    return (
      this.cached(
        `SELECT 1 AS hit FROM observations o JOIN items i ON i.id = o.item_id
         WHERE o.device_id = ? AND o.observed_at BETWEEN ? AND ? AND i.state = 'pending' AND i.relay_after IS NOT NULL
         LIMIT 1`,
      ).get(deviceId.toString(), first, last) !== undefined
    );
  }

  /**
   * Ends the hold of the pending anchor copies holding a reading of the device observed from `first` to `last`: the
   * share group gave this instance the message too, so it is this instance's to relay now. Returns the items released.
   */
  releaseAnchorCopies(deviceId: bigint, first: number, last: number): number {
    return this.transaction(() =>
      Number(
        this.cached(
          `UPDATE items SET relay_after = NULL
           WHERE state = 'pending' AND relay_after IS NOT NULL
             AND id IN (SELECT item_id FROM observations WHERE device_id = ? AND observed_at BETWEEN ? AND ?)`,
        ).run(deviceId.toString(), first, last).changes,
      ),
    );
  }

  /**
   * Pending anchor copies whose hold ended by `now` (`relay_after` ≤ now), oldest first, at most `limit`: the items an
   * instance claims before it relays them (oracle/relay/anchor-claims.ts).
   */
  dueAnchorCopies(now: number, limit: number): { id: number; deviceId: bigint; first: number; last: number }[] {
    return this.cached(
      `SELECT id, device_id, first_observed_at, last_observed_at FROM items
       WHERE state = 'pending' AND relay_after IS NOT NULL AND relay_after <= ? ORDER BY relay_after, id LIMIT ?`,
    )
      .all(now, limit)
      .map((r) => ({
        id: Number(r.id),
        deviceId: BigInt(str(r.device_id)),
        first: Number(r.first_observed_at),
        last: Number(r.last_observed_at),
      }));
  }

  /**
   * Holds the given pending anchor copies until `until` at least (their claim window, or a yield to another
   * instance); a later hold is kept.
   */
  holdAnchorCopies(ids: readonly number[], until: number): void {
    if (ids.length === 0) return;
    this.transaction(() => {
      this.cached(
        `UPDATE items SET relay_after = MAX(relay_after, ?)
         WHERE state = 'pending' AND relay_after IS NOT NULL AND id IN (SELECT value FROM json_each(?))`,
      ).run(until, JSON.stringify(ids));
    });
  }

  /**
   * The pending anchor copies (still held or due) holding a reading of the device observed from `first` to `last`:
   * those another instance's claim concerns.
   */
  anchorCopiesOf(deviceId: bigint, first: number, last: number): number[] {
    return this.cached(
      `SELECT DISTINCT i.id AS id FROM observations o JOIN items i ON i.id = o.item_id
       WHERE o.device_id = ? AND o.observed_at BETWEEN ? AND ? AND i.state = 'pending' AND i.relay_after IS NOT NULL`,
    )
      .all(deviceId.toString(), first, last)
      .map((r) => Number(r.id));
  }

  /**
   * Items of the given devices in batches still in flight (state `batched`: sent or mined, not confirmed), in
   * observation order: the relay's own readings the chain will hold once those batches are mined (in nonce order).
   */
  batchedItemsOf(deviceIds: readonly bigint[]): StoredItem[] {
    if (deviceIds.length === 0) return [];
    return this.all(
      "SELECT * FROM items WHERE state = 'batched' AND device_id IN (SELECT value FROM json_each(?)) ORDER BY device_id, first_observed_at, id",
      JSON.stringify(deviceIds.map((d) => d.toString())),
    ).map(toItem);
  }

  /**
   * Moves the pending protocol v1 items (from a store written before protocol v2, or given back by a batch of
   * before that was dropped) to `unrelayable`, skip reason `ProtocolV1`: a v2 contract cannot verify them. They are
   * kept, never deleted, as evidence. Returns them (the relay reports them).
   */
  retireV1Pending(): StoredItem[] {
    // A read first (the partial index items_v1_pending): the relay asks every tick, and a write transaction would
    // take the write lock each time.
    if (
      this.cached("SELECT 1 AS hit FROM items WHERE state = 'pending' AND protocol = 1 LIMIT 1").get() === undefined
    ) {
      return [];
    }
    return this.transaction(() => {
      const rows = this.stmt(
        `UPDATE items SET state = 'unrelayable', skip_reason = '${PROTOCOL_V1_REASON}'
         WHERE state = 'pending' AND protocol = 1 RETURNING *`,
      ).all();
      const items = rows.map(toItem).sort((a, b) => a.id - b.id);
      for (const item of items) this.pending -= item.count;
      return items;
    });
  }

  /** Items kept as unrelayable protocol v1 evidence (readings), by device (decimal id). */
  unrelayableReadings(): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.all(
      "SELECT device_id, SUM(count) AS n FROM items WHERE state = 'unrelayable' GROUP BY device_id ORDER BY device_id",
    )) {
      out.set(str(r.device_id), Number(r.n));
    }
    return out;
  }

  /** One item by id (state and skip reason included), or undefined. */
  item(itemId: number): StoredItem | undefined {
    const row = this.one("SELECT * FROM items WHERE id = ?", itemId);
    return row === undefined ? undefined : toItem(row);
  }

  itemsOfBatch(batchId: number): StoredItem[] {
    return this.all("SELECT * FROM items WHERE batch_id = ? ORDER BY id", batchId).map(toItem);
  }

  /**
   * Marks items skipped before submission, so no gas is spent on them: `DuplicateSequence` (the chain holds them)
   * or `StaleSequence` (they do not continue the device's recorded chain: the chain will never accept them).
   */
  skipPending(itemIds: readonly number[], reason: string): void {
    this.transaction(() => {
      const stmt = this.stmt(
        "UPDATE items SET state = 'skipped', skip_reason = ? WHERE id = ? AND state = 'pending' RETURNING count",
      );
      for (const id of itemIds) {
        const row = stmt.get(reason, id);
        if (row !== undefined) this.pending -= Number(row.count);
      }
    });
  }

  /** Highest nonce of any batch, or undefined. */
  maxNonce(): number | undefined {
    const row = this.one("SELECT MAX(nonce) AS n FROM batches WHERE state != 'dropped'");
    return row?.n === null || row === undefined ? undefined : Number(row.n);
  }

  /**
   * Nonces at or above `from` that a batch of ours holds: in flight, mined or confirmed (a dropped or reverted batch
   * holds none). The transaction manager signs a new batch with the lowest nonce at or above the chain's that none
   * holds, so a nonce freed by a reorg is filled and nonces stay contiguous.
   */
  heldNonces(from: number): Set<number> {
    return new Set(
      this.all(
        "SELECT nonce FROM batches WHERE nonce >= ? AND state IN ('sent', 'mined', 'confirmed') ORDER BY nonce",
        from,
      ).map((r) => Number(r.nonce)),
    );
  }

  /** The batch of ours that holds `nonce` (mined or confirmed; in flight), if any. */
  batchAtNonce(nonce: number): StoredBatch | undefined {
    const row = this.one(
      "SELECT * FROM batches WHERE nonce = ? AND state IN ('sent', 'mined', 'confirmed') ORDER BY id DESC LIMIT 1",
      nonce,
    );
    return row === undefined ? undefined : toBatch(row);
  }

  /**
   * receivedAt of the oldest reading not yet on chain (an item `pending`, held or not, or `batched`: in a batch not yet
   * confirmed), or undefined: the age /healthz judges. An anchor copy counts from the end of its hold
   * (`relay_after`), not before: within its hold it waits by design (a time after now: not stuck).
   */
  oldestUnrecordedAt(): number | undefined {
    // Pending: the oldest ordinary item (by id, the index), and the anchor copies (their partial index). Batched:
    // every item (a few batches in flight).
    const ordinary = this.cached(
      "SELECT received_at AS at FROM items WHERE state = 'pending' AND protocol = 2 AND relay_after IS NULL ORDER BY id LIMIT 1",
    ).get();
    const held = this.cached(
      `SELECT MIN(MAX(received_at, relay_after)) AS at FROM items
       WHERE state = 'pending' AND protocol = 2 AND relay_after IS NOT NULL`,
    ).get();
    const batched = this.cached(
      `SELECT MIN(MAX(received_at, COALESCE(relay_after, 0))) AS at FROM items WHERE state = 'batched' AND protocol = 2`,
    ).get();
    return minOf(minOf(ordinary?.at, held?.at), batched?.at);
  }

  /** Creates a batch of pending items with its first attempt: committed before the broadcast. */
  createBatch(itemIds: readonly number[], readingCount: number, attempt: NewAttempt, now: number): number {
    return this.transaction(() => {
      const { lastInsertRowid } = this.stmt(
        "INSERT INTO batches (state, nonce, reading_count, created_at) VALUES ('sent', ?, ?, ?)",
      ).run(attempt.nonce, readingCount, now);
      const batchId = Number(lastInsertRowid);
      const stmt = this.stmt(
        "UPDATE items SET state = 'batched', batch_id = ? WHERE id = ? AND state = 'pending' RETURNING count",
      );
      for (const id of itemIds) {
        const row = stmt.get(batchId, id);
        if (row === undefined) throw new OracleError("STORE_FAILED", `item ${id} is no longer pending`);
        this.pending -= Number(row.count);
      }
      this.insertAttempt(batchId, attempt);
      return batchId;
    });
  }

  /** Records another attempt (replacement) of a batch: committed before its broadcast. */
  addAttempt(batchId: number, attempt: NewAttempt): void {
    this.write(() => this.insertAttempt(batchId, attempt));
  }

  attemptsOf(batchId: number): StoredAttempt[] {
    return this.all("SELECT * FROM attempts WHERE batch_id = ? ORDER BY id", batchId).map((r) => ({
      id: Number(r.id),
      batchId: Number(r.batch_id),
      nonce: Number(r.nonce),
      maxFeePerGas: BigInt(str(r.max_fee)),
      maxPriorityFeePerGas: BigInt(str(r.max_priority_fee)),
      gasLimit: BigInt(str(r.gas_limit)),
      rawTx: str(r.raw_tx),
      hash: str(r.hash),
      createdAt: Number(r.created_at),
    }));
  }

  batchesIn(state: BatchState): StoredBatch[] {
    return this.all("SELECT * FROM batches WHERE state = ? ORDER BY nonce, id", state).map(toBatch);
  }

  /** Confirmed batches mined at or above `fromBlock` (still watched for reorgs). */
  recentConfirmed(fromBlock: number): StoredBatch[] {
    return this.all(
      "SELECT * FROM batches WHERE state = 'confirmed' AND block_number >= ? ORDER BY nonce",
      fromBlock,
    ).map(toBatch);
  }

  batch(batchId: number): StoredBatch | undefined {
    const row = this.one("SELECT * FROM batches WHERE id = ?", batchId);
    return row === undefined ? undefined : toBatch(row);
  }

  markMined(batchId: number, txHash: string, blockNumber: number, blockHash: string, gasUsed: bigint): void {
    this.write(() =>
      this.stmt(
        "UPDATE batches SET state = 'mined', tx_hash = ?, block_number = ?, block_hash = ?, gas_used = ? WHERE id = ?",
      ).run(txHash, blockNumber, blockHash, gasUsed.toString(), batchId),
    );
  }

  /**
   * Confirms a mined batch: each item recorded or skipped with the contract's reason, or (`retry`, a retryable
   * skip) back to pending and out of the batch, in the same transaction.
   */
  confirmBatch(batchId: number, outcomes: readonly ItemOutcome[]): void {
    this.transaction(() => {
      const stmt = this.stmt("UPDATE items SET state = ?, skip_reason = ? WHERE id = ? AND batch_id = ?");
      const retry = this.stmt(
        "UPDATE items SET state = 'pending', batch_id = NULL, skip_reason = NULL WHERE id = ? AND batch_id = ? AND state = 'batched' RETURNING count",
      );
      for (const o of outcomes) {
        if (o.retry === true) {
          const row = retry.get(o.itemId, batchId);
          if (row !== undefined) this.pending += Number(row.count);
          continue;
        }
        stmt.run(o.skipReason === undefined ? "recorded" : "skipped", o.skipReason ?? null, o.itemId, batchId);
      }
      this.stmt("UPDATE batches SET state = 'confirmed' WHERE id = ?").run(batchId);
    });
  }

  /**
   * A reorg dropped a mined or confirmed batch: it is in flight again (its raw tx will be re-sent). Items that went
   * back to pending at its confirmation (`retry`) are no longer the batch's: the re-sent transaction may still
   * record them, and their own later submission is then a `DuplicateSequence` (the chain holds them).
   */
  reopenBatch(batchId: number): void {
    this.transaction(() => {
      this.stmt(
        "UPDATE batches SET state = 'sent', tx_hash = NULL, block_number = NULL, block_hash = NULL, gas_used = NULL WHERE id = ?",
      ).run(batchId);
      this.stmt("UPDATE items SET state = 'batched', skip_reason = NULL WHERE batch_id = ? AND state != 'batched'").run(
        batchId,
      );
    });
  }

  /**
   * The batch's transaction will never be mined (its nonce went to no attempt of ours, or it reverted): its
   * items go back to pending and are batched again.
   */
  releaseBatch(batchId: number, state: "dropped" | "reverted"): void {
    this.transaction(() => {
      this.stmt("UPDATE batches SET state = ? WHERE id = ?").run(state, batchId);
      const rows = this.stmt(
        "UPDATE items SET state = 'pending', batch_id = NULL WHERE batch_id = ? AND state = 'batched' RETURNING count",
      ).all(batchId);
      for (const row of rows) this.pending += Number(row.count);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Registry cache and cursors
  // -------------------------------------------------------------------------------------------

  device(deviceId: bigint): CachedDevice | undefined {
    const r = this.one("SELECT * FROM devices WHERE device_id = ?", deviceId.toString());
    if (r === undefined) return undefined;
    return {
      deviceId,
      keyType: Number(r.key_type),
      intervalSeconds: Number(r.interval_seconds),
      revokedAtBlock: Number(r.revoked_at_block),
      signer: str(r.signer),
      qx: str(r.qx),
      qy: str(r.qy),
      keyValidFrom: Number(r.key_valid_from),
      revokedFrom: Number(r.revoked_from),
      fetchedAt: Number(r.fetched_at),
    };
  }

  putDevice(d: CachedDevice): void {
    this.write(() => this.upsertDevice(d));
  }

  private upsertDevice(d: CachedDevice): void {
    this.stmt(
      `INSERT INTO devices (device_id, key_type, interval_seconds, revoked_at_block, signer, qx, qy, fetched_at,
           key_valid_from, revoked_from)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET key_type = excluded.key_type, interval_seconds = excluded.interval_seconds,
           revoked_at_block = excluded.revoked_at_block, signer = excluded.signer, qx = excluded.qx, qy = excluded.qy,
           fetched_at = excluded.fetched_at, key_valid_from = excluded.key_valid_from,
           revoked_from = excluded.revoked_from`,
    ).run(
      d.deviceId.toString(),
      d.keyType,
      d.intervalSeconds,
      d.revokedAtBlock,
      d.signer,
      d.qx,
      d.qy,
      d.fetchedAt,
      d.keyValidFrom,
      d.revokedFrom,
    );
  }

  /**
   * Deletes the rows of devices the registry did not know (key type 0): earlier versions kept one per unknown id,
   * without bound; the device cache keeps them in memory now. Returns how many went.
   */
  purgeUnknownDevices(): number {
    return Number(this.stmt("DELETE FROM devices WHERE key_type = 0").run().changes);
  }

  getMeta(key: string): string | undefined {
    const row = this.one("SELECT value FROM meta WHERE key = ?", key);
    return row === undefined ? undefined : str(row.value);
  }

  setMeta(key: string, value: string): void {
    this.write(() =>
      this.stmt(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ).run(key, value),
    );
  }

  /** Item counts by state (health, tests). */
  countsByState(): Record<ItemState, number> {
    const out: Record<ItemState, number> = { pending: 0, batched: 0, recorded: 0, skipped: 0, unrelayable: 0 };
    for (const r of this.all("SELECT state, SUM(count) AS n FROM items GROUP BY state")) {
      out[str(r.state) as ItemState] = Number(r.n);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Messages set aside (judged later)
  // -------------------------------------------------------------------------------------------

  /** Stores messages set aside in one transaction (committed when this returns); their ids, in order. */
  setAside(messages: readonly NewSetAsideMessage[], nextAttemptAt: number): number[] {
    const ids = this.transaction(() => {
      const insert = this.cached(
        `INSERT INTO set_aside (topic, payload, device_id, reason, received_at, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      );
      return messages.map((m) =>
        Number(insert.run(m.topic, m.payload, m.deviceId, m.reason, m.receivedAt, nextAttemptAt).lastInsertRowid),
      );
    });
    this.setAsideRows += ids.length;
    return ids;
  }

  /** Messages set aside now. */
  setAsideCount(): number {
    return this.setAsideRows;
  }

  /** Up to `limit` messages set aside whose next attempt is due at `now`, oldest attempt time first. */
  setAsideDue(now: number, limit: number): SetAsideMessage[] {
    return this.all(
      "SELECT * FROM set_aside WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
      now,
      limit,
    ).map(toSetAside);
  }

  /** When the next message set aside is due, and when the oldest was received; undefined when there is none. */
  setAsideTimes(): { nextAttemptAt: number; oldestReceivedAt: number } | undefined {
    const row = this.one("SELECT MIN(next_attempt_at) AS next, MIN(received_at) AS oldest FROM set_aside");
    if (row === undefined || row.next === null) return undefined;
    return { nextAttemptAt: Number(row.next), oldestReceivedAt: Number(row.oldest) };
  }

  /** A message set aside, tried again and still not judged: its next attempt. */
  postponeSetAside(id: number, nextAttemptAt: number, error: string): void {
    this.cached("UPDATE set_aside SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?").run(
      nextAttemptAt,
      error,
      id,
    );
  }

  /** Deletes a message set aside once its verdict is final (its item committed, or dropped). */
  deleteSetAside(id: number): void {
    const { changes } = this.cached("DELETE FROM set_aside WHERE id = ?").run(id);
    this.setAsideRows -= Number(changes);
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  private insertAttempt(batchId: number, a: NewAttempt): void {
    this.stmt(
      "INSERT INTO attempts (batch_id, nonce, max_fee, max_priority_fee, gas_limit, raw_tx, hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(
      batchId,
      a.nonce,
      a.maxFeePerGas.toString(),
      a.maxPriorityFeePerGas.toString(),
      a.gasLimit.toString(),
      a.rawTx,
      a.hash,
      a.createdAt,
    );
  }

  /** A fresh prepared statement (the batching and registry paths: a few per second). */
  private stmt(sql: string): StatementSync {
    return this.db.prepare(sql);
  }

  /**
   * A prepared statement kept for the life of the store: the intake path's (a duplicate check and two inserts per
   * message; preparing costs ~15 µs each here) and the relay's per-tick look for protocol v1 items. node:sqlite resets a statement after `get()` / `run()`, so a kept
   * one holds no read snapshot (checked: a WAL checkpoint from another connection is not blocked by it).
   */
  private cached(sql: string): StatementSync {
    let stmt = this.statements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * Runs `fn` in one write transaction. On failure the transaction is rolled back unless SQLite already did (on
   * SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM and a few more it may roll the whole transaction back by itself: a
   * ROLLBACK then fails with "cannot rollback - no transaction is active" and would hide the real error), and
   * SQLite's error is thrown as a {@link StoreError} naming the file; the oracle's own errors pass unchanged.
   */
  private transaction<T>(fn: () => T): T {
    const pendingBefore = this.pending;
    try {
      this.db.exec("BEGIN IMMEDIATE");
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      this.pending = pendingBefore;
      if (this.db.isOpen && this.db.isTransaction) {
        try {
          this.db.exec("ROLLBACK");
        } catch {
          // The error to report is the first one; SQLite ends the transaction with the connection anyway.
        }
      }
      throw storeError(error, this.path, "write", this.maxSizeMb);
    }
  }

  /** A single-statement write (autocommit): SQLite's error as a {@link StoreError}. */
  private write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw storeError(error, this.path, "write", this.maxSizeMb);
    }
  }

  private one(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.stmt(sql).get(...params);
  }

  private all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.stmt(sql).all(...params);
  }
}

/** The smaller of two optional SQLite numbers (NULL and undefined: none). */
function minOf(a: SQLInputValue | undefined, b: SQLInputValue | undefined): number | undefined {
  const x = a === undefined || a === null ? undefined : Number(a);
  const y = b === undefined || b === null ? undefined : Number(b);
  if (x === undefined) return y;
  return y === undefined || y >= x ? x : y;
}

function toItem(r: Row): StoredItem {
  const body = r.body;
  return {
    id: Number(r.id),
    deviceId: BigInt(str(r.device_id)),
    firstSequence: Number(r.first_seq),
    count: Number(r.count),
    kind: r.kind === "window" ? "window" : "reading",
    curve: r.curve === "p256" ? "p256" : "secp256k1",
    protocol: Number(r.protocol) === 1 ? 1 : 2,
    firstObservedAt: Number(r.first_observed_at),
    lastObservedAt: Number(r.last_observed_at),
    previousObservedAt: r.previous_observed_at === null ? null : Number(r.previous_observed_at),
    body: body instanceof Uint8Array ? body : new Uint8Array(),
    receivedAt: Number(r.received_at),
    relayAfter: r.relay_after === null || r.relay_after === undefined ? null : Number(r.relay_after),
    state: str(r.state) as ItemState,
    batchId: r.batch_id === null ? null : Number(r.batch_id),
    skipReason: r.skip_reason === null ? null : str(r.skip_reason),
  };
}

function toSetAside(r: Row): SetAsideMessage {
  const payload = r.payload;
  return {
    id: Number(r.id),
    topic: str(r.topic),
    payload: payload instanceof Uint8Array ? payload : new Uint8Array(),
    deviceId: r.device_id === null ? null : str(r.device_id),
    reason: str(r.reason),
    receivedAt: Number(r.received_at),
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error === null ? null : str(r.last_error),
  };
}

function toBatch(r: Row): StoredBatch {
  return {
    id: Number(r.id),
    state: str(r.state) as BatchState,
    nonce: Number(r.nonce),
    readingCount: Number(r.reading_count),
    createdAt: Number(r.created_at),
    txHash: r.tx_hash === null ? null : str(r.tx_hash),
    blockNumber: r.block_number === null ? null : Number(r.block_number),
    blockHash: r.block_hash === null ? null : str(r.block_hash),
  };
}

/**
 * The observation times of a protocol v1 item from its stored body (the v1 binary MQTT form: version 0x01, then a
 * READINGS item of one reading or a WINDOW item; docs/protocol.md of v1), or undefined if the body is not one.
 * - READINGS: kind 1, deviceId 2..9, count 10..11, sequence 12..15, observedAt 16..20.
 * - WINDOW: kind 1, deviceId 2..9, firstSequence 10..13, firstObservedAt 14..18, intervalSeconds 19..22,
 *   count 23..24.
 */
export function v1ObservationRange(body: SQLInputValue | undefined): { first: number; last: number } | undefined {
  if (!(body instanceof Uint8Array) || body[0] !== 0x01) return undefined;
  const uint = (from: number, bytes: number): number => {
    let v = 0;
    for (let i = 0; i < bytes; i++) v = v * 256 + (body[from + i] ?? 0);
    return v;
  };
  if (body[1] === 0x01 && body.length >= 21) {
    const at = uint(16, 5);
    return { first: at, last: at };
  }
  if (body[1] === 0x02 && body.length >= 25) {
    const first = uint(14, 5);
    const count = uint(23, 2);
    return { first, last: first + Math.max(0, count - 1) * uint(19, 4) };
  }
  return undefined;
}

/** A TEXT (or numeric) column as a string. */
function str(value: SQLInputValue | undefined): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return value.toString();
  throw new OracleError("STORE_FAILED", "the store holds an unexpected value type; is the file from another program?");
}

// ---------------------------------------------------------------------------------------------
// SQLite's errors as themselves
// ---------------------------------------------------------------------------------------------

/** SQLite's primary result codes (sqlite3.h) the oracle tells apart. */
const SQLITE_PRIMARY: Readonly<Record<number, string>> = {
  3: "SQLITE_PERM",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  7: "SQLITE_NOMEM",
  8: "SQLITE_READONLY",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  26: "SQLITE_NOTADB",
};

/** Extended SQLITE_IOERR codes (code >> 8) of the unix VFS that say which operation failed. */
const SQLITE_IOERR_EXTENDED: Readonly<Record<number, string>> = {
  1: "READ",
  3: "WRITE",
  4: "FSYNC",
  5: "DIR_FSYNC",
  6: "TRUNCATE",
  7: "FSTAT",
  10: "DELETE",
  18: "SHMOPEN",
  19: "SHMSIZE",
  21: "SHMMAP",
  24: "MMAP",
};

/** Below this many free bytes on the store's filesystem, an I/O error is taken for a full disk. */
const DISK_FULL_BELOW_BYTES = 1024 * 1024;

/** The name of a SQLite result code (extended codes included), e.g. `SQLITE_IOERR_SHMSIZE`. */
export function sqliteCodeName(errcode: number): string {
  const primary = SQLITE_PRIMARY[errcode & 0xff];
  if (primary === undefined) return `SQLite result code ${errcode}`;
  const extended = errcode >> 8;
  if (extended === 0) return primary;
  const name = primary === "SQLITE_IOERR" ? SQLITE_IOERR_EXTENDED[extended] : undefined;
  return name === undefined ? `${primary} (extended code ${errcode})` : `${primary}_${name}`;
}

/** Free bytes on the filesystem of `path` (for an unprivileged user), or undefined if it cannot be read. */
export function freeBytesAt(path: string): number | undefined {
  try {
    const stats = statfsSync(dirname(path));
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

/** Bytes as a short figure (0 B, 512 KB, 3.2 GB). */
function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 || value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/**
 * A SQLite error (node:sqlite's, with its numeric `errcode`) as a {@link StoreError} that names the store file,
 * SQLite's own message and result code and the kind of fault, with what to do; anything else (the oracle's own
 * errors, a StoreError already) is returned unchanged. An I/O error while the store's filesystem has (almost) no
 * space left is a full disk: SQLite reports a full disk as SQLITE_FULL while writing, but as an I/O error (e.g.
 * SQLITE_IOERR_SHMSIZE) when opening the store needs a new `-shm` or `-wal` file.
 */
export function storeError(cause: unknown, path: string, action: string, maxSizeMb?: number): unknown {
  if (cause instanceof StoreError) return cause;
  const e = cause as { errcode?: unknown; errstr?: unknown } | null;
  if (e === null || typeof e !== "object" || typeof e.errcode !== "number") return cause;
  const errcode = e.errcode;
  const sqliteCode = sqliteCodeName(errcode);
  const said = `SQLite: "${typeof e.errstr === "string" ? e.errstr : messageOf(cause)}", ${sqliteCode}`;
  const free = freeBytesAt(path);
  const space = free === undefined ? "" : `; ${formatBytes(free)} free on its filesystem`;
  const diskFull = free !== undefined && free < DISK_FULL_BELOW_BYTES;
  let fault: StoreFault;
  let what: string;
  switch (errcode & 0xff) {
    case 13: // SQLITE_FULL
      fault = "full";
      what =
        diskFull || maxSizeMb === undefined
          ? `its disk is full (${said}${space}): free space on that disk`
          : `it reached its size limit, store.maxSizeMb = ${maxSizeMb} (${said}${space}): raise store.maxSizeMb`;
      break;
    case 10: // SQLITE_IOERR
      fault = diskFull ? "full" : "io";
      what = diskFull
        ? `its disk is full (${said}${space}): free space on that disk`
        : `disk I/O error (${said}${space}): check the disk (kernel log) and its space`;
      break;
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
      fault = "busy";
      what = `it stayed locked beyond the busy timeout (${said}): is another process using this store? One store per instance`;
      break;
    case 3: // SQLITE_PERM
    case 8: // SQLITE_READONLY
    case 14: // SQLITE_CANTOPEN
      fault = "readonly";
      what = `it cannot be opened or written (${said}${space}): check the permissions of the file, its directory and the mount`;
      break;
    case 11: // SQLITE_CORRUPT
    case 26: // SQLITE_NOTADB
      fault = "corrupt";
      what = `it is corrupt or not a SQLite file (${said}): stop the oracle and restore the store from a backup`;
      break;
    default:
      fault = "other";
      what = `${said}${space}`;
  }
  return new StoreError(fault, `the store ${path} cannot ${action}: ${what}`, { sqliteCode, path }, { cause });
}
