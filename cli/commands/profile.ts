/**
 * `profile create`: registers a temperature profile (QA_ROLE) from a preset or a YAML/JSON file, temperatures
 * optionally overridden in °C (`--min 2 --max 8`), and the lookup `shipment create` uses to find an existing
 * profile equal to a preset. The profile is printed in words (°C) before it is sent or simulated.
 */
import type { ContractRunner } from "ethers";

import { deploymentStartBlock } from "../../sdk/deployment.js";
import { getLogsPaged } from "../../sdk/logs.js";
import { describeProfile } from "../../sdk/verdict.js";
import {
  createdId,
  optionalString,
  requireRole,
  requireString,
  sendTransaction,
  outcomeFields,
  usageError,
} from "../command.js";
import type { Command, CommandArgs, CommandContext, TransactionOutcome } from "../command.js";
import { DEGREE_FIELDS, PRESET_NAMES, checkProfile, degreesToCenti, resolveProfile } from "../profiles.js";
import type { DegreeField, TemperatureProfile } from "../profiles.js";

/** The °C options of `profile create`, by the profile field they set. */
const DEGREE_OPTIONS: Readonly<Record<string, DegreeField>> = {
  min: "minC",
  max: "maxC",
  "absolute-min": "absoluteMinC",
  "absolute-max": "absoluteMaxC",
  freeze: "freezeC",
  "mkt-limit": "mktLimitC",
};

/** `profile` with the °C options of the command line applied (each "2", "-0.5", "8°C" or "8 °C"), checked again. */
export function withDegreeOptions(profile: TemperatureProfile, args: CommandArgs): TemperatureProfile {
  const out: Record<string, unknown> = { ...profile };
  let changed = false;
  for (const [option, field] of Object.entries(DEGREE_OPTIONS)) {
    const text = optionalString(args, option);
    if (text === undefined) continue;
    out[DEGREE_FIELDS[field]] = degreesToCenti(text, `--${option}`);
    changed = true;
  }
  if (!changed) return profile;
  const result = out as unknown as TemperatureProfile;
  const problem = checkProfile(result);
  if (problem !== undefined) usageError(`the profile with the °C options is not valid: ${problem}`);
  return result;
}

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
        [--min <°C>] [--max <°C>] [--absolute-min <°C>] [--absolute-max <°C>] [--freeze <°C>] [--mkt-limit <°C>]

A profile file holds the fields of IShipments.TemperatureProfile (minCentiC, maxCentiC, absoluteMinCentiC,
absoluteMaxCentiC, freezeCentiC, maxFreezeSeconds, maxSingleExcursionSeconds, maxCumulativeExcursionSeconds,
adaptationSeconds, maxGapIntervals, faultFlagMask, mktLimitCentiC, mktMinCoverageSeconds, mktEnabled), or
\`extends: <preset>\` and the fields that differ. Temperatures may be given in °C instead (minC, maxC,
absoluteMinC, absoluteMaxC, freezeC, mktLimitC: 2, -0.5 or "8 °C"); centi-degree values that are clearly degrees
(minCentiC: -2, maxCentiC: 8) are refused. The °C options override the preset's or file's temperatures (e.g.
--profile vaccine-2-8 --min 3 --max 7). The profile is printed in °C before it is sent (or, with --dry-run,
simulated). Presets and their sources: docs/deploying.md.`,
  options: {
    profile: { type: "string" },
    ...Object.fromEntries(Object.keys(DEGREE_OPTIONS).map((o) => [o, { type: "string" as const }])),
  },
  async run(ctx, args) {
    const profile = withDegreeOptions(resolveProfile(requireString(args, "profile")), args);
    ctx.out.line("profile:");
    for (const line of describeProfile(profile)) ctx.out.line(`  ${line}`);
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
