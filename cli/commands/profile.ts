/**
 * `profile create`: registers a temperature profile (QA_ROLE) from a preset or a YAML/JSON file, and the lookup
 * `shipment create` uses to find an existing profile equal to a preset.
 */
import { requireRole, requireString, sendTransaction, outcomeFields } from "../command.js";
import type { Command, CommandContext } from "../command.js";
import { PRESET_NAMES, resolveProfile } from "../profiles.js";
import type { TemperatureProfile } from "../profiles.js";

/** The id of an on-chain profile equal to `profile` (newest first), from the ProfileCreated events. */
export async function findProfileId(ctx: CommandContext, profile: TemperatureProfile): Promise<bigint | undefined> {
  const coldChain = ctx.contracts.coldChain;
  const events = await coldChain.queryFilter(
    coldChain.filters.ProfileCreated(),
    ctx.deployment.contracts.ColdChain.blockNumber,
  );
  for (const event of events.reverse()) {
    const id = event.args.profileId;
    const onChain = await coldChain.profile(id);
    const same = (Object.keys(profile) as (keyof TemperatureProfile)[]).every(
      (key) => String(onChain[key]) === String(profile[key]),
    );
    if (same) return id;
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
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: "createProfile",
      staticCall: () => coldChain.createProfile.staticCall(profile),
      estimateGas: () => coldChain.createProfile.estimateGas(profile),
      send: () => coldChain.createProfile(profile),
    });
    ctx.out.result({ profileId: outcome.returned, ...profile, ...outcomeFields(outcome) });
  },
};

export const profileCommands: readonly Command[] = [create];
