/**
 * The ABIs `connectSuite` binds. In the repository they come from the TypeChain factories; the package build
 * (scripts/build-sdk.ts) replaces the compiled module with the same ABIs as plain data, so that a dApp's bundle
 * does not carry the contracts' bytecode (about 70 kB) that the factories hold for deploying. The factories
 * themselves stay exported for those who deploy.
 */
import { ColdChain__factory } from "../types/ethers-contracts/factories/contracts/ColdChain__factory.js";
import { ColdChainLens__factory } from "../types/ethers-contracts/factories/contracts/ColdChainLens__factory.js";
import { DeviceRegistry__factory } from "../types/ethers-contracts/factories/contracts/DeviceRegistry__factory.js";

export const COLD_CHAIN_ABI = ColdChain__factory.abi;
export const COLD_CHAIN_LENS_ABI = ColdChainLens__factory.abi;
export const DEVICE_REGISTRY_ABI = DeviceRegistry__factory.abi;
