/**
 * A device's shipment context for alerts: the shipment it is bound to (`ColdChain.deviceTrack`), that shipment's
 * custodian and profile limits (`ColdChain.shipment`, `ColdChain.profile`), read through the oracle's RPC pool and
 * cached per device with a bounded size and a time to live (a custody transfer shows within the TTL).
 */
import { Interface } from "ethers";

import type { RpcPool } from "../chain.js";
import { COLD_CHAIN_ABI } from "../chain.js";
import { ExpiringLru } from "../verification/lookup-limits.js";
import type { Clock } from "../verification/registry.js";
import type { AlertLimits } from "./rules.js";

const PROFILE_ABI = new Interface([
  "function profile(uint32 profileId) view returns (tuple(int16 minCentiC, int16 maxCentiC, int16 absoluteMinCentiC, int16 absoluteMaxCentiC, int16 freezeCentiC, uint32 maxFreezeSeconds, uint32 maxSingleExcursionSeconds, uint32 maxCumulativeExcursionSeconds, uint32 adaptationSeconds, uint8 maxGapIntervals, uint8 faultFlagMask, int16 mktLimitCentiC, uint32 mktMinCoverageSeconds, bool mktEnabled))",
]);

/** What an alert of a device needs from the chain. */
export interface ShipmentContext {
  readonly shipmentId: string;
  readonly custodian: string;
  readonly limits: AlertLimits;
}

/** Undefined: the device is bound to no shipment (its readings raise no alert). */
export type DeviceContext = ShipmentContext | undefined;

export class ShipmentContexts {
  /** Wrapped, so that a device bound to no shipment is cached too. */
  private readonly cache: ExpiringLru<bigint, { readonly context: DeviceContext }>;

  constructor(
    private readonly rpc: RpcPool,
    private readonly coldChain: string,
    size: number,
    ttlMs: number,
    clock: Clock,
  ) {
    this.cache = new ExpiringLru(size, ttlMs, clock);
  }

  /** The device's context, from the cache or the chain; throws when the chain cannot be read (RPC_UNAVAILABLE). */
  async of(deviceId: bigint): Promise<DeviceContext> {
    const cached = this.cache.get(deviceId);
    if (cached !== undefined) return cached.context;
    const context = await this.read(deviceId);
    this.cache.set(deviceId, { context });
    return context;
  }

  private async read(deviceId: bigint): Promise<DeviceContext> {
    const call = async <T>(iface: Interface, fn: string, args: unknown[]): Promise<T> =>
      this.rpc.call(`alerts:${fn}`, async (p) => {
        const out = await p.call({ to: this.coldChain, data: iface.encodeFunctionData(fn, args) });
        return iface.decodeFunctionResult(fn, out)[0] as T;
      });
    const track = await call<{ shipmentId: bigint }>(COLD_CHAIN_ABI, "deviceTrack", [deviceId]);
    if (track.shipmentId === 0n) return undefined;
    const shipment = await call<{ custodian: string; profileId: bigint }>(COLD_CHAIN_ABI, "shipment", [
      track.shipmentId,
    ]);
    const profile = await call<{
      minCentiC: bigint;
      maxCentiC: bigint;
      freezeCentiC: bigint;
      maxGapIntervals: bigint;
      faultFlagMask: bigint;
    }>(PROFILE_ABI, "profile", [shipment.profileId]);
    return {
      shipmentId: track.shipmentId.toString(),
      custodian: shipment.custodian,
      limits: {
        minCentiC: Number(profile.minCentiC),
        maxCentiC: Number(profile.maxCentiC),
        freezeCentiC: Number(profile.freezeCentiC),
        maxGapIntervals: Number(profile.maxGapIntervals),
        faultFlagMask: Number(profile.faultFlagMask),
      },
    };
  }
}
