/**
 * `profile create`: registers a temperature profile (QA_ROLE) from a preset or a YAML/JSON file, and the lookup
 * `shipment create` uses to find an existing profile equal to a preset.
 */
import type { ContractRunner } from "ethers";

import { deploymentStartBlock } from "../../sdk/deployment.js";
import { getLogsPaged } from "../../sdk/logs.js";
import { createdId, requireRole, requireString, sendTransaction, outcomeFields } from "../command.js";
import type { Command, CommandContext, TransactionOutcome } from "../command.js";
import { PRESET_NAMES, resolveProfile } from "../profiles.js";
import type { TemperatureProfile } from "../profiles.js";

/**
 * The id of an on-chain profile equal to `profile` (newest first): the ProfileCreated logs since the deployment
 * (read in pages, as public endpoints require), compared against the profile each event carries.
 */
export async function findProfileId(ctx: CommandContext, profile: TemperatureProfile): Promise<bigint | undefined> {
  const coldChain = ctx.contracts.coldChain;
  const event = coldChain.interface.getEvent("ProfileCreated");
  const logs = await getLogsPaged(
    ctx.provider,
    { address: ctx.deployment.contracts.ColdChain.address, topics: [event.topicHash] },
    { fromBlock: deploymentStartBlock(ctx.deployment) },
  );
  for (const log of logs.reverse()) {
    const parsed = coldChain.interface.parseLog(log);
    if (parsed?.name !== "ProfileCreated") continue;
    const onChain = parsed.args.getValue("profile") as Record<keyof TemperatureProfile, unknown>;
    const same = (Object.keys(profile) as (keyof TemperatureProfile)[]).every(
      (key) => String(onChain[key]) === String(profile[key]),
    );
    if (same) return BigInt(parsed.args.getValue("profileId") as bigint);
  }
  return undefined;
}

const create: Command = {
  name: ["profile", "create"],
  summary: "create a temperature profile (QA_ROLE) from a preset or a YAML/JSON file; prints its id",
  usage: `--profile <${PRESET_NAMES.join("|")}|file.yaml|file.json>

A profile file holds the fields of IShipments.TemperatureProfile (minCentiC, maxCentiC, absoluteMinCentiC,
absoluteMaxCentiC, freezeCentiC, maxFreezeSeconds, maxSingleExcursionSeconds, maxCumulativeExcursionSeconds,
adaptationSeconds, maxGapIntervals, faultFlagMask, mktLimitCentiC, mktMinCoverageSeconds, mktEnabled), or
\`extends: <preset>\` and the fields that differ. Presets and their sources: docs/deploying.md.`,
  options: { profile: { type: "string" } },
  async run(ctx, args) {
    const profile = resolveProfile(requireString(args, "profile"));
    const signer = await ctx.signer();
    await requireRole(ctx, { contract: "ColdChain", role: "QA_ROLE" }, signer.address);
    const { outcome, profileId } = await createProfile(ctx, signer, profile);
    ctx.out.result({
      profileId,
      ...profile,
      ...outcomeFields(outcome),
    });
  },
};

/** Sends (or, with --dry-run, simulates) `createProfile`; the id comes from the receipt's ProfileCreated log. */
export async function createProfile(
  ctx: CommandContext,
  signer: ContractRunner,
  profile: TemperatureProfile,
): Promise<{ outcome: TransactionOutcome; profileId: bigint }> {
  const coldChain = ctx.contracts.coldChain.connect(signer);
  const outcome = await sendTransaction(ctx, {
    label: "createProfile",
    staticCall: () => coldChain.createProfile.staticCall(profile),
    estimateGas: () => coldChain.createProfile.estimateGas(profile),
    send: () => coldChain.createProfile(profile),
  });
  return { outcome, profileId: await createdId(outcome, coldChain, "ProfileCreated", "profileId") };
}

export const profileCommands: readonly Command[] = [create];
