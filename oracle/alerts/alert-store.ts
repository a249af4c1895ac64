/**
 * The alerts' durable state, in the oracle's store file (its own connection, its own `alert_` tables):
 * - `alert_devices`: each device's alert state (./rules.ts), so a restart raises no second "started" alert;
 * - `alerts`: every alert raised, UNIQUE (device, observed_at, kind): never two alerts for one reading and kind;
 *   its `seq` is the Server-Sent Events id;
 * - `alert_outbox`: one row per alert and sink (MQTT, each webhook) until delivered or given up: what was not
 *   delivered before a stop or crash is delivered after the restart (at least once, with the alert's stable id);
 * - `alert_meta`: the evaluator's cursor (the last item of the `items` table evaluated).
 * An alert, its outbox rows, the device's next state and the cursor are committed in one transaction.
 */
import { DatabaseSync } from "node:sqlite";
import type { StatementSync } from "node:sqlite";

import type { AlertPayload } from "./payload.js";
import type { DeviceAlertState } from "./rules.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alert_devices (
  device_id TEXT PRIMARY KEY,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  device_id TEXT NOT NULL,
  observed_at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  raised_at INTEGER NOT NULL,
  UNIQUE (device_id, observed_at, kind)
);
CREATE TABLE IF NOT EXISTS alert_outbox (
  alert_seq INTEGER NOT NULL,
  sink TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  done_at INTEGER,
  last_error TEXT,
  PRIMARY KEY (alert_seq, sink)
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS alert_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/** An outbox row due for delivery, with its alert. */
export interface OutboxEntry {
  readonly seq: number;
  readonly sink: string;
  readonly attempts: number;
  readonly createdAt: number;
  readonly payload: string;
  readonly alertId: string;
  readonly shipmentId: string;
}

/** A stored alert (for `GET /alerts`). */
export interface StoredAlert {
  readonly seq: number;
  readonly payload: string;
}

/** A verified item of the oracle's store, as the evaluator reads it. */
export interface EvaluatedItem {
  readonly id: number;
  readonly deviceId: bigint;
  readonly body: Uint8Array;
  readonly receivedAt: number;
}

export class AlertStore {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  constructor(path: string, synchronous: "FULL" | "NORMAL") {
    this.db = new DatabaseSync(path);
    this.db.exec(`PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`);
    this.db.exec(SCHEMA);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  /** The evaluator's cursor; undefined before the first start (which begins at the store's newest item). */
  cursor(): number | undefined {
    const row = this.stmt("SELECT value FROM alert_meta WHERE key = 'cursor'").get();
    return row === undefined ? undefined : Number(row.value);
  }

  setCursor(itemId: number): void {
    this.stmt(
      "INSERT INTO alert_meta (key, value) VALUES ('cursor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ).run(String(itemId));
  }

  /** The newest item id of the oracle's store (0 when empty). */
  newestItemId(): number {
    return Number(this.stmt("SELECT COALESCE(MAX(id), 0) AS id FROM items").get()?.id ?? 0);
  }

  /** Items stored after `cursor`, oldest first. */
  itemsAfter(cursor: number, limit: number): EvaluatedItem[] {
    return this.stmt("SELECT id, device_id, body, received_at FROM items WHERE id > ? ORDER BY id LIMIT ?")
      .all(cursor, limit)
      .map((r) => ({
        id: Number(r.id),
        deviceId: BigInt(r.device_id as string),
        body: r.body as Uint8Array,
        receivedAt: Number(r.received_at),
      }));
  }

  deviceState(deviceId: bigint): DeviceAlertState | undefined {
    const row = this.stmt("SELECT state FROM alert_devices WHERE device_id = ?").get(deviceId.toString());
    return row === undefined ? undefined : (JSON.parse(row.state as string) as DeviceAlertState);
  }

  /** Every device's state (the silence timer's scan; one row per device bound to a shipment). */
  deviceStates(): { deviceId: bigint; state: DeviceAlertState }[] {
    return this.stmt("SELECT device_id, state FROM alert_devices")
      .all()
      .map((r) => ({
        deviceId: BigInt(r.device_id as string),
        state: JSON.parse(r.state as string) as DeviceAlertState,
      }));
  }

  /**
   * Commits, in one transaction: the alerts (each skipped if its (device, observedAt, kind) was raised before), an
   * outbox row per new alert and sink, the devices' next states, and the cursor. Returns the alerts newly stored with
   * their seq.
   */
  commit(
    alerts: readonly { payload: AlertPayload; deviceId: bigint; keyObservedAt: number }[],
    states: ReadonlyMap<bigint, DeviceAlertState>,
    sinks: readonly string[],
    now: number,
    cursor?: number,
  ): { seq: number; payload: AlertPayload }[] {
    const stored: { seq: number; payload: AlertPayload }[] = [];
    this.db.exec("BEGIN IMMEDIATE");
    try {
      for (const a of alerts) {
        const result = this.stmt(
          `INSERT INTO alerts (id, device_id, observed_at, kind, payload, raised_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT DO NOTHING`,
        ).run(a.payload.id, a.deviceId.toString(), a.keyObservedAt, a.payload.kind, JSON.stringify(a.payload), now);
        if (Number(result.changes) === 0) continue;
        const seq = Number(result.lastInsertRowid);
        for (const sink of sinks) {
          this.stmt(
            "INSERT INTO alert_outbox (alert_seq, sink, state, next_attempt_at, created_at) VALUES (?, ?, 'pending', ?, ?)",
          ).run(seq, sink, now, now);
        }
        stored.push({ seq, payload: a.payload });
      }
      for (const [deviceId, state] of states) {
        this.stmt(
          "INSERT INTO alert_devices (device_id, state) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET state = excluded.state",
        ).run(deviceId.toString(), JSON.stringify(state));
      }
      if (cursor !== undefined) this.setCursor(cursor);
      this.db.exec("COMMIT");
    } catch (error) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw error;
    }
    return stored;
  }

  /** Outbox rows due at `now`, oldest first. */
  due(now: number, limit: number): OutboxEntry[] {
    return this.stmt(
      `SELECT o.alert_seq, o.sink, o.attempts, o.created_at, a.payload, a.id
       FROM alert_outbox o JOIN alerts a ON a.seq = o.alert_seq
       WHERE o.state = 'pending' AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.alert_seq LIMIT ?`,
    )
      .all(now, limit)
      .map((r) => {
        const payload = r.payload as string;
        return {
          seq: Number(r.alert_seq),
          sink: r.sink as string,
          attempts: Number(r.attempts),
          createdAt: Number(r.created_at),
          payload,
          alertId: r.id as string,
          shipmentId: (JSON.parse(payload) as AlertPayload).shipmentId,
        };
      });
  }

  /** When the next pending row is due (undefined: none pending). */
  nextDueAt(): number | undefined {
    const row = this.stmt("SELECT MIN(next_attempt_at) AS at FROM alert_outbox WHERE state = 'pending'").get();
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }

  delivered(seq: number, sink: string, now: number): void {
    this.stmt(
      "UPDATE alert_outbox SET state = 'delivered', attempts = attempts + 1, done_at = ?, last_error = NULL WHERE alert_seq = ? AND sink = ?",
    ).run(now, seq, sink);
  }

  retryLater(seq: number, sink: string, nextAttemptAt: number, error: string): void {
    this.stmt(
      "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE alert_seq = ? AND sink = ?",
    ).run(nextAttemptAt, error, seq, sink);
  }

  failed(seq: number, sink: string, now: number, error: string): void {
    this.stmt(
      "UPDATE alert_outbox SET state = 'failed', attempts = attempts + 1, done_at = ?, last_error = ? WHERE alert_seq = ? AND sink = ?",
    ).run(now, error, seq, sink);
  }

  /** Marks pending rows of sinks no longer configured failed; returns how many. */
  failRemovedSinks(sinks: readonly string[], now: number): number {
    const placeholders = sinks.map(() => "?").join(", ");
    const where = sinks.length === 0 ? "" : `AND sink NOT IN (${placeholders})`;
    const result = this.db
      .prepare(
        `UPDATE alert_outbox SET state = 'failed', done_at = ?, last_error = 'sink no longer configured' WHERE state = 'pending' ${where}`,
      )
      .run(now, ...sinks);
    return Number(result.changes);
  }

  /** Pending outbox rows and the creation time of the oldest. */
  outboxStats(): { pending: number; oldestCreatedAt: number | undefined } {
    const row = this.stmt(
      "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM alert_outbox WHERE state = 'pending'",
    ).get();
    return {
      pending: Number(row?.n ?? 0),
      oldestCreatedAt: row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest),
    };
  }

  /** Outbox rows by state (tests, operators). */
  outboxCounts(): Record<string, number> {
    const counts: Record<string, number> = { pending: 0, delivered: 0, failed: 0 };
    for (const r of this.stmt("SELECT state, COUNT(*) AS n FROM alert_outbox GROUP BY state").all()) {
      counts[r.state as string] = Number(r.n);
    }
    return counts;
  }

  /** Alerts after `seq`, oldest first (SSE replay). */
  alertsAfter(seq: number, limit: number): StoredAlert[] {
    return this.stmt("SELECT seq, payload FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?")
      .all(seq, limit)
      .map((r) => ({ seq: Number(r.seq), payload: r.payload as string }));
  }

  /** The newest alert's seq (0: none). */
  lastSeq(): number {
    return Number(this.stmt("SELECT COALESCE(MAX(seq), 0) AS seq FROM alerts").get()?.seq ?? 0);
  }

  /** Every alert, oldest first (tests). */
  all(): AlertPayload[] {
    return this.stmt("SELECT payload FROM alerts ORDER BY seq")
      .all()
      .map((r) => JSON.parse(r.payload as string) as AlertPayload);
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}
