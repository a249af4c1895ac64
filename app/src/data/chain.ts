/**
 * The dashboard's chain access, all through the SDK: the shipment list (ids from `ShipmentCreated` events read
 * with `getLogsPaged`), a shipment's state (`readShipment`), history (`shipmentHistory`) and chart series
 * (`temperatureTimeline`), the profiles, role checks, and the actions a connected wallet may take.
 */
import { JsonRpcProvider, ZeroAddress, ZeroHash, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import type { ContractTransactionResponse, Provider, Signer } from "ethers";

import {
  checkDecisionNote,
  connectSuite,
  deploymentStartBlock,
  encodeDecisionReason,
  getLogsPaged,
  readShipment,
  shipmentHistory,
  signCustodyAcceptance,
  temperatureTimeline,
  toTemperatureProfile,
} from "../../../sdk/index.js";
import type {
  ColdChainSuite,
  Deployment,
  ShipmentHistory,
  ShipmentState,
  TemperatureProfile,
  TemperatureTimeline,
} from "../../../sdk/index.js";
import { shipmentRow } from "./shaping.js";
import type { ShipmentRow } from "./shaping.js";
import { deploymentDomain } from "./handover.js";
import type { SignedHandover } from "./handover.js";

export interface ShipmentView {
  readonly state: ShipmentState;
  readonly history: ShipmentHistory;
  readonly timeline: TemperatureTimeline;
}

export interface ProfileEntry {
  readonly profileId: number;
  readonly profile: TemperatureProfile;
}

export type RoleName = "SHIPPER_ROLE" | "QA_ROLE" | "GUARDIAN_ROLE" | "DEFAULT_ADMIN_ROLE";

/** Read access to one deployment over one provider. */
export class ChainReader {
  readonly suite: ColdChainSuite;

  constructor(
    readonly deployment: Deployment,
    readonly provider: Provider,
  ) {
    this.suite = connectSuite(deployment, provider);
  }

  /** A reader over a JSON-RPC URL (read-only mode). */
  static overRpc(deployment: Deployment, url: string): ChainReader {
    const provider = new JsonRpcProvider(url, deployment.chainId, {
      staticNetwork: true,
      batchMaxCount: 20,
      batchStallTime: 2,
    });
    return new ChainReader(deployment, provider);
  }

  async blockNumber(): Promise<number> {
    return await this.provider.getBlockNumber();
  }

  /** Every shipment id of the deployment, newest first. */
  async shipmentIds(): Promise<bigint[]> {
    const { coldChain } = this.suite;
    const logs = await getLogsPaged(
      this.provider,
      {
        address: this.deployment.contracts.ColdChain.address,
        topics: [coldChain.interface.getEvent("ShipmentCreated").topicHash],
      },
      { fromBlock: deploymentStartBlock(this.deployment) },
    );
    const ids = logs.map((log) => BigInt(log.topics[1] ?? "0x0"));
    return [...new Set(ids)].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  }

  /** A list row: state plus the first device's series for the sparkline. */
  async row(shipmentId: bigint): Promise<ShipmentRow> {
    const [state, history] = await Promise.all([
      readShipment(this.suite, shipmentId),
      shipmentHistory(this.suite, shipmentId),
    ]);
    return shipmentRow(state, temperatureTimeline(history), history);
  }

  async rows(ids: readonly bigint[]): Promise<ShipmentRow[]> {
    const out: ShipmentRow[] = [];
    for (let i = 0; i < ids.length; i += 6) {
      out.push(...(await Promise.all(ids.slice(i, i + 6).map((id) => this.row(id)))));
    }
    return out;
  }

  async shipment(shipmentId: bigint): Promise<ShipmentView> {
    const [state, history] = await Promise.all([
      readShipment(this.suite, shipmentId),
      shipmentHistory(this.suite, shipmentId),
    ]);
    return { state, history, timeline: temperatureTimeline(history) };
  }

  /** The rule profiles (from `ProfileCreated` events), oldest first. */
  async profiles(): Promise<ProfileEntry[]> {
    const { coldChain } = this.suite;
    const logs = await getLogsPaged(
      this.provider,
      {
        address: this.deployment.contracts.ColdChain.address,
        topics: [coldChain.interface.getEvent("ProfileCreated").topicHash],
      },
      { fromBlock: deploymentStartBlock(this.deployment) },
    );
    const ids = logs.map((log) => Number(BigInt(log.topics[1] ?? "0x0")));
    return await Promise.all(
      ids.map(async (profileId) => ({ profileId, profile: toTemperatureProfile(await coldChain.profile(profileId)) })),
    );
  }

  async hasRole(role: RoleName, account: string): Promise<boolean> {
    const { coldChain } = this.suite;
    const id = role === "DEFAULT_ADMIN_ROLE" ? "0x" + "00".repeat(32) : keccak256(toUtf8Bytes(role));
    return await coldChain.hasRole(id, account);
  }

  async handoverNonce(shipmentId: bigint): Promise<bigint> {
    return await this.suite.coldChain.handoverNonce(shipmentId);
  }

  async latestTimestamp(): Promise<number> {
    return (await this.provider.getBlock("latest"))?.timestamp ?? Math.floor(Date.now() / 1000);
  }
}

export interface CreateShipmentInput {
  readonly receiver: string;
  readonly owner: string;
  readonly profileId: number;
  readonly deviceIds: readonly bigint[];
  /** Free text hashed into the bytes32 external reference (e.g. an SSCC). */
  readonly reference: string;
}

/** Transactions of a connected wallet. Every method dry-runs (`staticCall`) before sending. */
export class ChainWriter {
  readonly suite: ColdChainSuite;

  constructor(
    readonly deployment: Deployment,
    readonly signer: Signer,
  ) {
    this.suite = connectSuite(deployment, signer);
  }

  private async mined(sent: Promise<ContractTransactionResponse>): Promise<string> {
    const tx = await sent;
    const receipt = await tx.wait();
    return receipt?.hash ?? tx.hash;
  }

  async createShipment(input: CreateShipmentInput): Promise<{ shipmentId: bigint; tx: string }> {
    const params = {
      receiver: input.receiver,
      owner: input.owner,
      profileId: input.profileId,
      deviceIds: [...input.deviceIds],
      plannedStartAt: 0,
      externalRef: referenceBytes32(input.reference),
    };
    // The chain refuses a device whose owner has not approved this shipper; say so, naming the owner.
    const shipper = await this.signer.getAddress();
    for (const deviceId of params.deviceIds) {
      if (await this.suite.registry.mayBind(deviceId, shipper)) continue;
      const { owner } = await this.suite.registry.device(deviceId);
      if (owner === ZeroAddress) throw new Error(`device ${deviceId} is not registered`);
      throw new Error(missingApproval(this.deployment.network, deviceId, shipper, owner));
    }
    const cc = this.suite.coldChain;
    const shipmentId = await cc.createShipment.staticCall(params);
    const tx = await cc.createShipment(params);
    const receipt = await tx.wait();
    return { shipmentId, tx: receipt?.hash ?? tx.hash };
  }

  async start(id: bigint): Promise<string> {
    await this.suite.coldChain.startShipment.staticCall(id);
    return await this.mined(this.suite.coldChain.startShipment(id));
  }

  /** Two-step handover, step 1: offer custody to `to` for `validSeconds`. */
  async offer(id: bigint, to: string, now: number, validSeconds = 3600): Promise<string> {
    await this.suite.coldChain.offerCustody.staticCall(id, to, now + validSeconds);
    return await this.mined(this.suite.coldChain.offerCustody(id, to, now + validSeconds));
  }

  async cancelOffer(id: bigint): Promise<string> {
    await this.suite.coldChain.cancelCustodyOffer.staticCall(id);
    return await this.mined(this.suite.coldChain.cancelCustodyOffer(id));
  }

  /** Two-step handover, step 2 (by the recipient). */
  async accept(id: bigint): Promise<string> {
    await this.suite.coldChain.acceptCustody.staticCall(id);
    return await this.mined(this.suite.coldChain.acceptCustody(id));
  }

  /** The next custodian signs a one-transaction handover for the current custodian to submit. */
  async signAcceptance(id: bigint, nonce: bigint, deadline: bigint): Promise<SignedHandover> {
    const custodian = await this.signer.getAddress();
    const domain = deploymentDomain(this.deployment);
    const acceptance = { shipmentId: id, custodian, nonce, deadline };
    const signature = await signCustodyAcceptance(this.signer, domain, acceptance);
    return { domain, acceptance, signature };
  }

  /** The current custodian submits a pasted signed handover (read with `readHandover`, which checks its domain). */
  async transferWithSignature(h: SignedHandover): Promise<string> {
    const cc = this.suite.coldChain;
    const { shipmentId, custodian, deadline } = h.acceptance;
    await cc.transferCustodyWithSignature.staticCall(shipmentId, custodian, deadline, h.signature);
    return await this.mined(cc.transferCustodyWithSignature(shipmentId, custodian, deadline, h.signature));
  }

  /** Releases; with a note (free text, checked by `checkDecisionNote`), through `decideWithNote`. */
  async release(id: bigint, note = ""): Promise<string> {
    const cc = this.suite.coldChain;
    if (note.trim() === "") {
      await cc.release.staticCall(id);
      return await this.mined(cc.release(id));
    }
    const text = checkDecisionNote(note);
    await cc.decideWithNote.staticCall(id, true, ZeroHash, text);
    return await this.mined(cc.decideWithNote(id, true, ZeroHash, text));
  }

  /**
   * Rejects with one of the documented reason codes (`DECISION_REASONS`), stored as readable bytes32 text; with a note
   * (free text, emitted readably in `DecisionNoted`), through `decideWithNote`.
   */
  async reject(id: bigint, reason: string, note = ""): Promise<string> {
    const cc = this.suite.coldChain;
    const code = encodeDecisionReason(reason);
    if (note.trim() === "") {
      await cc.reject.staticCall(id, code);
      return await this.mined(cc.reject(id, code));
    }
    const text = checkDecisionNote(note);
    await cc.decideWithNote.staticCall(id, false, code, text);
    return await this.mined(cc.decideWithNote(id, false, code, text));
  }
}

/**
 * A shipment reference as the chain's bytes32: the text itself when it fits in 31 bytes (readable by everyone, as
 * `cli shipment create --ref` stores it), else its keccak256 hash (only who knows the text can match it).
 */
export function referenceBytes32(reference: string): string {
  const text = reference.trim();
  if (text === "") return ZeroHash;
  return toUtf8Bytes(text).length <= 31 ? encodeBytes32String(text) : keccak256(toUtf8Bytes(text));
}

/** A readable one-line message for a failed call: the contract's custom error by name when it has one. */
/** Why the chain refuses to bind `deviceId` for `shipper`, and the owner's command that fixes it. */
export function missingApproval(network: string, deviceId: bigint, shipper: string, owner?: string): string {
  const who = owner === undefined ? "its owner" : `its owner ${owner}`;
  return (
    `device ${deviceId}: ${who} has not approved shipper ${shipper} to bind its devices; the owner must approve ` +
    `it first (\`npm run cli -- device approve-shipper --network ${network} --shipper ${shipper}\`)`
  );
}

export function describeError(error: unknown, suite: ColdChainSuite): string {
  const e = error as {
    data?: unknown;
    info?: { error?: { message?: string } };
    shortMessage?: string;
    message?: string;
  };
  if (typeof e.data === "string") {
    try {
      const parsed = suite.coldChain.interface.parseError(e.data);
      if (parsed?.name === "ShipmentDeviceNotApproved") {
        const [deviceId, shipper] = parsed.args as unknown as [bigint, string];
        return `ShipmentDeviceNotApproved: ${missingApproval(suite.deployment.network, deviceId, shipper)}`;
      }
      if (parsed !== null) return `${parsed.name}(${parsed.args.map((a) => String(a)).join(", ")})`;
    } catch {
      // not a ColdChain error
    }
  }
  if ((e as { code?: unknown }).code === "ACTION_REJECTED") return "you rejected the request in the wallet";
  return e.shortMessage ?? e.info?.error?.message ?? e.message ?? String(error);
}
