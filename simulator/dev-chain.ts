/**
 * Moving a development chain's clock with simulated time (hardhat node, anvil, the EDR chain of `npm start`):
 * `evm_setNextBlockTimestamp` + `evm_mine`, never backwards. Shared by `npm run simulate -- --warp-rpc` and the
 * local stack.
 */
import type { JsonRpcProvider } from "ethers";

async function latestTime(provider: JsonRpcProvider): Promise<number> {
  const block = await provider.getBlock("latest");
  if (block === null) throw new Error("the node returned no latest block");
  return block.timestamp;
}

/** Mines a block at `seconds` unless the chain is already there or past it. */
export async function warpDevChain(provider: JsonRpcProvider, seconds: number): Promise<void> {
  if (seconds <= (await latestTime(provider))) return;
  try {
    await provider.send("evm_setNextBlockTimestamp", [seconds]);
  } catch (error) {
    // Another transaction (a relay batch) mined in between may already have passed `seconds`.
    if (seconds <= (await latestTime(provider))) return;
    throw error;
  }
  await provider.send("evm_mine", []);
}
