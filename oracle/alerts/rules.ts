/**
 * Alert rules: pure functions from a device's alert state, its shipment's profile limits and one verified reading
 * (or the wall clock, for a silent device) to the alerts it raises and the device's next state. No I/O; the
 * evaluator (./evaluator.ts) keeps the state durable and calls these.
 *
 * Edge-triggered: a "started" kind is raised when the condition begins (after a reading without it, or on the
 * device's first reading in a shipment), not again while it lasts. A reading observed at or before the device's last
 * evaluated one (a late copy, a backlog out of order) changes nothing.
 */

/** The kinds of alert, in the order one reading raises them. */
export const ALERT_KINDS = ["gap", "excursion_started", "excursion_ended", "freeze_started", "device_fault"] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** The profile limits alerts are judged by (centi-°C; `maxGapIntervals` × the device's interval is the gap limit). */
export interface AlertLimits {
  readonly minCentiC: number;
  readonly maxCentiC: number;
  readonly freezeCentiC: number;
  readonly maxGapIntervals: number;
  readonly faultFlagMask: number;
}

/** One reading as the rules see it (a window's sample is one reading too). */
export interface RuleReading {
  readonly observedAt: number;
  readonly tempCentiC: number;
  readonly flags: number;
  /** The device's interval (seconds). */
  readonly intervalSeconds: number;
}

/** A device's alert state (persisted in `alert_devices`). */
export interface DeviceAlertState {
  readonly shipmentId: string;
  /** Observation time (unix s) of the last reading evaluated. */
  readonly lastObservedAt: number;
  /** When that reading was received (unix ms, the oracle's clock): the silence timer counts from it. */
  readonly lastReceivedAt: number;
  readonly lastTempCentiC: number;
  readonly lastFlags: number;
  /** maxGapIntervals × intervalSeconds of the last reading (0: no gap rule). */
  readonly maxGapSeconds: number;
  readonly excursion: boolean;
  readonly freeze: boolean;
  readonly fault: boolean;
  /** `lastObservedAt` of the reading a gap alert was raised after (0: none): one gap alert per silence. */
  readonly gapFrom: number;
}

/** A gap's extent. */
export interface GapInfo {
  /** Observation time of the last reading before the silence (the alert's de-duplication key for kind `gap`). */
  readonly fromObservedAt: number;
  /** Observation time of the late reading; undefined while the device is still silent (raised by the timer). */
  readonly toObservedAt: number | undefined;
  /** Seconds without data: to the late reading, or (timer) since the last reading was received. */
  readonly silentSeconds: number;
  readonly maxGapSeconds: number;
}

/** An alert the rules raise, before the shipment context is added. */
export interface RaisedAlert {
  readonly kind: AlertKind;
  /** The de-duplication key's time: the reading's observation time; for `gap`, `gap.fromObservedAt`. */
  readonly keyObservedAt: number;
  /** The reading the alert is about (for a timer's gap: the last reading before the silence). */
  readonly observedAt: number;
  readonly tempCentiC: number;
  readonly flags: number;
  readonly gap?: GapInfo;
}

/** The alerts one reading raises and the device's next state. */
export function evaluateReading(
  state: DeviceAlertState | undefined,
  limits: AlertLimits,
  shipmentId: string,
  reading: RuleReading,
  receivedAt: number,
): { raised: RaisedAlert[]; next: DeviceAlertState } {
  // A device moved to another shipment starts afresh there.
  const prior = state !== undefined && state.shipmentId === shipmentId ? state : undefined;
  if (prior !== undefined && reading.observedAt <= prior.lastObservedAt) return { raised: [], next: prior };
  const { observedAt, tempCentiC, flags } = reading;
  const maxGapSeconds = limits.maxGapIntervals * reading.intervalSeconds;
  const raised: RaisedAlert[] = [];
  const alert = (kind: AlertKind, gap?: GapInfo): void => {
    raised.push({
      kind,
      keyObservedAt: gap?.fromObservedAt ?? observedAt,
      observedAt,
      tempCentiC,
      flags,
      ...(gap === undefined ? {} : { gap }),
    });
  };
  let gapFrom = prior?.gapFrom ?? 0;
  if (
    prior !== undefined &&
    maxGapSeconds > 0 &&
    observedAt - prior.lastObservedAt > maxGapSeconds &&
    prior.gapFrom !== prior.lastObservedAt
  ) {
    gapFrom = prior.lastObservedAt;
    alert("gap", {
      fromObservedAt: prior.lastObservedAt,
      toObservedAt: observedAt,
      silentSeconds: observedAt - prior.lastObservedAt,
      maxGapSeconds,
    });
  }
  const excursion = tempCentiC < limits.minCentiC || tempCentiC > limits.maxCentiC;
  if (excursion && prior?.excursion !== true) alert("excursion_started");
  if (!excursion && prior?.excursion === true) alert("excursion_ended");
  const freeze = tempCentiC <= limits.freezeCentiC;
  if (freeze && prior?.freeze !== true) alert("freeze_started");
  const fault = (flags & limits.faultFlagMask) !== 0;
  if (fault && prior?.fault !== true) alert("device_fault");
  return {
    raised,
    next: {
      shipmentId,
      lastObservedAt: observedAt,
      lastReceivedAt: receivedAt,
      lastTempCentiC: tempCentiC,
      lastFlags: flags,
      maxGapSeconds,
      excursion,
      freeze,
      fault,
      gapFrom,
    },
  };
}

/**
 * The gap alert of a device silent at `now` (unix ms) for longer than its gap limit since its last reading was
 * received, once per silence; undefined otherwise.
 */
export function silentGap(state: DeviceAlertState, now: number): RaisedAlert | undefined {
  if (state.maxGapSeconds <= 0 || state.gapFrom === state.lastObservedAt) return undefined;
  const silentMs = now - state.lastReceivedAt;
  if (silentMs <= state.maxGapSeconds * 1000) return undefined;
  return {
    kind: "gap",
    keyObservedAt: state.lastObservedAt,
    observedAt: state.lastObservedAt,
    tempCentiC: state.lastTempCentiC,
    flags: state.lastFlags,
    gap: {
      fromObservedAt: state.lastObservedAt,
      toObservedAt: undefined,
      silentSeconds: Math.floor(silentMs / 1000),
      maxGapSeconds: state.maxGapSeconds,
    },
  };
}
