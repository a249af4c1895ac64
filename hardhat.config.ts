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
  networks: {
    default: {
      type: "edr-simulated",
      chainType: "l1",
      hardfork: "osaka",
    },
    localhost: {
      type: "http",
      chainType: "l1",
      url: "http://127.0.0.1:8545",
    },
    sepolia: {
      type: "http",
      chainType: "l1",
      url: configVariable("SEPOLIA_RPC_URL"),
      accounts: [configVariable("DEPLOYER_PRIVATE_KEY")],
    },
  },
});
