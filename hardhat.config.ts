import { createRequire } from "node:module";

import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

/** Solidity compiles offline: solc-js from the `solc` npm package, pinned to exactly this version. */
export const SOLC_VERSION = "0.8.33";
const solcPath = require.resolve("solc/soljson.js");

const compiler = {
  version: SOLC_VERSION,
  path: solcPath,
  settings: {
    evmVersion: "osaka",
    viaIR: true,
    // runs = 1: the ingestion hot path is hand-written Yul, and the low setting keeps ColdChain under EIP-170's
    // 24,576 bytes (docs/architecture.md, "Gas design").
    optimizer: { enabled: true, runs: 1 },
  },
};

/** A public network: RPC URL and deployer key from the keystore or the environment, never from a file. */
function publicNetwork(chainType: "l1" | "op" | "generic", chainId: number, rpcUrlVariable: string) {
  return {
    type: "http" as const,
    chainType,
    chainId,
    url: configVariable(rpcUrlVariable),
    accounts: [configVariable("DEPLOYER_PRIVATE_KEY")],
  };
}

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    profiles: {
      default: compiler,
      production: compiler,
    },
  },
  paths: {
    sources: { solidity: ["contracts", "bench/contracts"] },
    tests: { mocha: "test", solidity: "test" },
  },
  // Networks: docs/deploying.md. Secrets (RPC URLs carrying API keys, the deployer key, explorer keys) come from
  // configVariable(): the Hardhat keystore (`npx hardhat keystore set SEPOLIA_RPC_URL`) or the environment.
  networks: {
    default: {
      type: "edr-simulated",
      chainType: "l1",
      hardfork: "osaka",
    },
    /** An in-process chain before Fusaka (no P256VERIFY at 0x100): how the suite behaves on such a chain. */
    prague: {
      type: "edr-simulated",
      chainType: "l1",
      hardfork: "prague",
    },
    /** `npx hardhat node`; COLDCHAIN_LOCALHOST_URL points elsewhere (the tests use a free port). */
    localhost: {
      type: "http",
      chainType: "l1",
      url: process.env.COLDCHAIN_LOCALHOST_URL ?? "http://127.0.0.1:8545",
    },
    sepolia: publicNetwork("l1", 11155111, "SEPOLIA_RPC_URL"),
    hoodi: publicNetwork("l1", 560048, "HOODI_RPC_URL"),
    baseSepolia: publicNetwork("op", 84532, "BASE_SEPOLIA_RPC_URL"),
    opSepolia: publicNetwork("op", 11155420, "OP_SEPOLIA_RPC_URL"),
    arbitrumSepolia: publicNetwork("generic", 421614, "ARBITRUM_SEPOLIA_RPC_URL"),
    polygonAmoy: publicNetwork("generic", 80002, "POLYGON_AMOY_RPC_URL"),
  },
  verify: {
    // One Etherscan v2 key covers every Etherscan-family explorer (Sepolia, Hoodi, Basescan, OP, Arbiscan, Amoy).
    etherscan: { apiKey: configVariable("ETHERSCAN_API_KEY") },
    blockscout: { enabled: true },
  },
});
