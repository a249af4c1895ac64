/**
 * A real oracle process for the fault drills: `node --import tsx oracle/main.ts --config <file>` as a child, its
 * JSON log lines kept with the time each arrived, its exit awaited with a measured duration, and its `/healthz` and
 * `/metrics` read over HTTP. Nothing is faked: the broker, the chain and the disk are real.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

import type { OracleConfig } from "../../oracle/config/index.js";
import { REPO_ROOT } from "./support.js";

/** A JSON log line of the oracle with the (test's) unix ms it arrived at. */
export interface ProcessLogLine {
  readonly at: number;
  readonly level: number;
  readonly msg: string;
  readonly module?: string;
  readonly err?: string;
  readonly [key: string]: unknown;
}

export interface HealthReply {
  readonly status: number;
  readonly body: {
    ok: boolean;
    mqttConnected: boolean;
    storeWritable?: boolean;
    storeError?: string;
    pendingReadings: number;
  };
}

/** One oracle process; every line it logs is in `logs` (and appended to `logFile`). */
export class OracleProcess {
  readonly logs: ProcessLogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;

  private constructor(
    readonly child: ChildProcess,
    readonly httpPort: number,
    readonly logFile: string,
  ) {
    this.exited = once(child, "exit").then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      at: Date.now(),
    }));
    const lines = createInterface({ input: child.stdout ?? process.stdin });
    lines.on("line", (line) => {
      appendFileSync(logFile, `${line}\n`);
      try {
        const parsed = JSON.parse(line) as { level: number; msg: string };
        this.logs.push({ ...parsed, at: Date.now() });
      } catch {
        this.logs.push({ at: Date.now(), level: 50, msg: line });
      }
    });
  }

  /** Writes the config (its HTTP port fixed, so /healthz answers before "oracle running") and starts the process. */
  static start(
    config: OracleConfig,
    dir: string,
    privateKey: string,
    httpPort: number,
    name = "oracle",
  ): OracleProcess {
    const configPath = join(dir, `${name}.json`);
    writeFileSync(configPath, JSON.stringify({ ...config, http: { ...config.http, port: httpPort } }));
    const logFile = join(dir, `${name}.log`);
    const child = spawn(process.execPath, ["--import", "tsx", "oracle/main.ts", "--config", configPath], {
      cwd: REPO_ROOT,
      env: { ...process.env, ORACLE_PRIVATE_KEY: privateKey, NODE_NO_WARNINGS: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    return new OracleProcess(child, httpPort, logFile);
  }

  /** Resolves with the first line (from `from`) whose message matches; rejects if the process exits first. */
  async waitForLog(pattern: RegExp, timeoutMs = 60_000, from = 0): Promise<ProcessLogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logs.slice(from).find((l) => pattern.test(l.msg));
      if (line !== undefined) return line;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the oracle exited before logging ${pattern} (log: ${this.logFile})`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} (log: ${this.logFile})`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Lines logged at or after `since` (unix ms). */
  linesSince(since: number): ProcessLogLine[] {
    return this.logs.filter((l) => l.at >= since);
  }

  /** Sends `signal` and resolves with the exit code and how long the exit took. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<{ code: number | null; ms: number }> {
    const sentAt = Date.now();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const { code, at } = await this.exited;
    return { code, ms: at - sentAt };
  }

  /** GET /healthz; undefined while the server does not answer. */
  async health(): Promise<HealthReply | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.httpPort}/healthz`);
      return { status: res.status, body: (await res.json()) as HealthReply["body"] };
    } catch {
      return undefined;
    }
  }

  /** The value of one series of /metrics (e.g. `coldchain_oracle_store_errors_total{fault="full"}`), or undefined. */
  async metric(series: string): Promise<number | undefined> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text();
      const [name, labels] = series.includes("{") ? series.split("{") : [series, ""];
      const wanted = (labels ?? "").replace("}", "").split(",").filter(Boolean);
      for (const line of text.split("\n")) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (wanted.every((l) => line.includes(l))) return Number(line.slice(line.lastIndexOf(" ") + 1));
      }
      return undefined;
    } catch {
      return undefined;
    }
  }
}
