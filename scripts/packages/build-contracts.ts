/**
 * `npm run build:contracts-package`: stages the `@coldchain/contracts` npm package in dist/packages/contracts
 * (gitignored), ready for `npm pack` / `npm publish dist/packages/contracts`. It holds:
 *
 * - `interfaces/I*.sol`: contracts/interfaces/ with the pragma widened to {@link PACKAGE_PRAGMA}, so that any
 *   current 0.8 compiler accepts them. The repository keeps `pragma solidity 0.8.33` in its own copies: a source
 *   edit, even of a pragma, changes the metadata hash at the end of every contract's bytecode that imports it.
 * - `abi/<Contract>.json`: the ABI of every contract, library and interface under contracts/, from artifacts/.
 * - `artifacts/<Contract>.json` and `ignition/index.js`: the suite's deployable artifacts and its Hardhat Ignition
 *   module (scripts/packages/contracts-ignition.ts, bundled), for projects that deploy the suite themselves.
 * - `deployments/<network>.json`: the public networks' address books (deployments/, local chains excluded).
 * - `README.md` (contracts/README.md) and a generated package.json.
 *
 * The contracts are built first when needed (scripts/lib/ensure-build.ts).
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

import { build } from "esbuild";

import { publicAddressBooks } from "../build-sdk.js";
import { REPO_ROOT, ensureContractsBuilt } from "../lib/ensure-build.js";
import { SUITE_ARTIFACTS } from "./contracts-ignition.js";
import { lockedVersion } from "../lib/lockfile.js";

/** The pragma of the packaged interfaces (the repository's compiler must satisfy it). */
export const PACKAGE_PRAGMA = "pragma solidity ^0.8.24;";

export const CONTRACTS_PACKAGE_DIR = join(REPO_ROOT, "dist", "packages", "contracts");

interface RootPackage {
  version: string;
  license: string;
  description: string;
}

interface Artifact {
  _format: string;
  contractName: string;
  sourceName: string;
  abi: unknown[];
  bytecode: string;
  deployedBytecode: string;
  linkReferences: object;
  deployedLinkReferences: object;
}

/** Builds the package folder; returns its path. */
export async function buildContractsPackage(out: string = CONTRACTS_PACKAGE_DIR): Promise<string> {
  await ensureContractsBuilt();
  const root = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as RootPackage;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });

  const interfaces = copyInterfaces(join(REPO_ROOT, "contracts", "interfaces"), join(out, "interfaces"));
  const abis = writeAbis(join(REPO_ROOT, "artifacts", "contracts"), join(out, "abi"), join(out, "artifacts"));
  await bundleIgnitionModule(join(out, "ignition"));
  const deployments = copyDeployments(join(REPO_ROOT, "deployments"), join(out, "deployments"));
  cpSync(join(REPO_ROOT, "contracts", "README.md"), join(out, "README.md"));

  const files = [
    "interfaces/",
    "abi/",
    "artifacts/",
    "ignition/",
    "README.md",
    ...(deployments.length > 0 ? ["deployments/"] : []),
  ];
  const pkg = {
    name: "@coldchain/contracts",
    version: root.version,
    description:
      "Coldchain's Solidity interfaces (IShipments, IReadingsInbox, IDeviceRegistry, IP256Verifier), ABIs as JSON and address books.",
    license: root.license,
    keywords: ["solidity", "ethereum", "cold-chain", "abi", "hardhat", "ignition"],
    type: "module",
    files,
    // Hardhat 3 and Node resolve only exported paths: every Solidity interface, ABI, artifact and address book is.
    exports: {
      "./interfaces/*": "./interfaces/*",
      "./abi/*": "./abi/*",
      "./artifacts/*": "./artifacts/*",
      "./ignition": { types: "./ignition/index.d.ts", default: "./ignition/index.js" },
      ...(deployments.length > 0 ? { "./deployments/*": "./deployments/*" } : {}),
      "./package.json": "./package.json",
    },
    // Only the Ignition module needs them (Solidity imports and ABIs need nothing): a Hardhat 3 project has both.
    peerDependencies: {
      "@nomicfoundation/hardhat-ignition": `^${lockedVersion("@nomicfoundation/hardhat-ignition")}`,
      ethers: `^${lockedVersion("ethers")}`,
    },
    peerDependenciesMeta: {
      "@nomicfoundation/hardhat-ignition": { optional: true },
      ethers: { optional: true },
    },
  };
  writeFileSync(join(out, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  console.log(
    `${relative(process.cwd(), out) || "."}: ${interfaces.length} interfaces, ${abis.length} ABIs, ` +
      `${deployments.length} address books`,
  );
  return out;
}

/** Copies each interface with {@link PACKAGE_PRAGMA}; only imports of sibling interfaces are allowed. */
function copyInterfaces(from: string, to: string): string[] {
  mkdirSync(to, { recursive: true });
  const names = readdirSync(from)
    .filter((f) => f.endsWith(".sol"))
    .sort();
  for (const name of names) {
    const source = readFileSync(join(from, name), "utf8");
    // The repository pins one compiler (hardhat.config.ts); that version must be inside the package's range.
    const pinned = /^pragma solidity (0\.8\.(\d+));$/m.exec(source);
    if (pinned === null || Number(pinned[2]) < 24) {
      throw new Error(`contracts/interfaces/${name}: expected a pinned "pragma solidity 0.8.N;" with N >= 24`);
    }
    for (const [, path] of source.matchAll(/^import\s+[^;]*?"([^"]+)"/gm)) {
      if (path === undefined || !/^\.\/I\w+\.sol$/.test(path)) {
        throw new Error(`contracts/interfaces/${name} imports "${path}": only sibling interfaces can be packaged`);
      }
    }
    writeFileSync(join(to, name), source.replace(pinned[0], PACKAGE_PRAGMA));
  }
  return names;
}

/** abi/<Contract>.json for every artifact under artifacts/contracts; the suite's whole artifacts in `artifactsTo`. */
function writeAbis(from: string, to: string, artifactsTo: string): string[] {
  if (!existsSync(from)) throw new Error(`${from} not found: run \`npx hardhat build\``);
  mkdirSync(to, { recursive: true });
  mkdirSync(artifactsTo, { recursive: true });
  const written = new Map<string, string>();
  for (const path of artifactFiles(from)) {
    const artifact = JSON.parse(readFileSync(path, "utf8")) as Artifact;
    const earlier = written.get(artifact.contractName);
    if (earlier !== undefined) {
      throw new Error(`two contracts named ${artifact.contractName} (${earlier}, ${artifact.sourceName})`);
    }
    written.set(artifact.contractName, artifact.sourceName);
    writeFileSync(join(to, `${artifact.contractName}.json`), `${JSON.stringify(artifact.abi, null, 2)}\n`);
    if ((SUITE_ARTIFACTS as readonly string[]).includes(artifact.contractName)) {
      // What Ignition reads (its Artifact type), without Hardhat's build-info ids.
      const { _format, contractName, sourceName, abi, bytecode, deployedBytecode } = artifact;
      const { linkReferences, deployedLinkReferences } = artifact;
      const deployable = {
        _format,
        contractName,
        sourceName,
        abi,
        bytecode,
        deployedBytecode,
        linkReferences,
        deployedLinkReferences,
      };
      writeFileSync(join(artifactsTo, `${contractName}.json`), `${JSON.stringify(deployable, null, 2)}\n`);
    }
  }
  const missing = SUITE_ARTIFACTS.filter((name) => !written.has(name));
  if (missing.length > 0) throw new Error(`no artifact for ${missing.join(", ")}: run \`npx hardhat build\``);
  return [...written.keys()].sort();
}

/** ignition/index.js (scripts/packages/contracts-ignition.ts with the repository's module) and its types. */
async function bundleIgnitionModule(to: string): Promise<void> {
  await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: { index: "scripts/packages/contracts-ignition.ts" },
    outdir: to,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node22",
    packages: "external",
    legalComments: "none",
    logLevel: "warning",
  });
  writeFileSync(join(to, "index.d.ts"), IGNITION_TYPES);
}

const IGNITION_TYPES = `import type { ContractFuture, IgnitionModule } from "@nomicfoundation/ignition-core";

/** The module's id: the prefix of every future id in the Ignition journal. */
export declare const SUITE_MODULE_ID = "ColdChainSuite";

/** The artifacts the module deploys (in this package's artifacts/ folder). */
export declare const SUITE_ARTIFACTS: readonly ("DeviceRegistry" | "MktTable" | "P256Fallback" | "ShipmentBook" | "ColdChain" | "ColdChainLens")[];

/** Who gets which role; addresses. */
export interface SuiteRoles {
  /** DEFAULT_ADMIN_ROLE on DeviceRegistry and ColdChain (grants and revokes every other role). */
  admin: string;
  /** DEVICE_MANAGER_ROLE on DeviceRegistry: registers devices. */
  deviceManagers: string[];
  /** GUARDIAN_ROLE on both contracts: pauses. */
  guardians: string[];
  /** SHIPPER_ROLE on ColdChain: creates shipments. */
  shippers: string[];
  /** QA_ROLE on ColdChain: creates profiles, releases or rejects any delivered shipment. */
  qa: string[];
}

export interface RoleGrant {
  contract: "DeviceRegistry" | "ColdChain";
  role: string;
  account: string;
}

/** keccak256 of the role name, as the contracts define them; DEFAULT_ADMIN_ROLE is zero. */
export declare function roleId(role: string): string;

/** Every grant the suite ends up with (constructor admin included), de-duplicated, in a stable order. */
export declare function suiteRoleGrants(roles: SuiteRoles): RoleGrant[];

/**
 * The suite's Ignition module: DeviceRegistry, MktTable, P256Fallback, the ShipmentBook library, ColdChain linked
 * to it, ColdChainLens, then the role grants of \`roles\`. \`deployer\` sends the transactions (the first admin);
 * when \`roles.admin\` is another account, the deployer hands it the admin role and renounces its own.
 */
export declare function buildColdChainModule(
  deployer: string,
  roles: SuiteRoles,
): IgnitionModule<
  "ColdChainSuite",
  string,
  {
    DeviceRegistry: ContractFuture<string>;
    MktTable: ContractFuture<string>;
    P256Fallback: ContractFuture<string>;
    ColdChain: ContractFuture<string>;
    ColdChainLens: ContractFuture<string>;
  }
>;
`;

function artifactFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...artifactFiles(path));
    else if (entry.name.endsWith(".json") && !entry.name.endsWith(".dbg.json")) files.push(path);
  }
  return files.sort();
}

/** The public networks' address books (deployments/, as `npm run build:sdk` selects them), validated. */
function copyDeployments(from: string, to: string): string[] {
  const books = publicAddressBooks(from);
  if (books.length > 0) mkdirSync(to, { recursive: true });
  for (const { name, deployment } of books) {
    writeFileSync(join(to, `${name}.json`), `${JSON.stringify(deployment, null, 2)}\n`);
  }
  return books.map((b) => b.name);
}

const USAGE = `Usage: npm run build:contracts-package
Stages @coldchain/contracts (interfaces, ABIs and address books) in dist/packages/contracts;
then \`npm pack dist/packages/contracts\` or \`npm publish dist/packages/contracts --access public\`.`;

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
  } else if (args.length > 0) {
    console.error(`build:contracts-package: unknown argument '${args[0] ?? ""}'; see --help`);
    process.exitCode = 2;
  } else {
    await buildContractsPackage();
  }
}
