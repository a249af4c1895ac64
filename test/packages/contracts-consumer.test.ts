/**
 * `@coldchain/contracts` as a Solidity developer meets it: the staged package (npm run build:contracts-package)
 * is packed, installed from its tarball into a fresh Hardhat 3 project in the temporary directory beside the
 * repository's Hardhat version and the newest solc on npm. There the README's Solidity example and a contract
 * importing every interface by package path compile, the interfaces' ABI as that compiler sees it equals the
 * package's `abi/<Name>.json`, the README's Ignition module deploys the suite from the packaged artifacts, and plain
 * Node imports an ABI by its package path.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";

import { PACKAGE_PRAGMA, buildContractsPackage } from "../../scripts/packages/build-contracts.js";
import { expectSuccess, freshProject, kB, lockedVersion, npmInstall, pack, run } from "./consumer-project.js";
import type { Tarball } from "./consumer-project.js";

/** The lowest version of the packaged interfaces' pragma (`^0.8.24`). */
const PRAGMA_FLOOR = "0.8.24";

/** Compiles the installed interfaces with solc-js `solc-floor` (standard JSON); prints its version, errors, sources. */
const FLOOR_COMPILE_MJS = `import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";

const solc = createRequire(import.meta.url)("solc-floor");
const dir = "node_modules/@coldchain/contracts/interfaces";
const sources = Object.fromEntries(readdirSync(dir).map((f) => [f, { content: readFileSync(dir + "/" + f, "utf8") }]));
const settings = { outputSelection: { "*": { "*": ["abi"] } } };
const out = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings })));
const errors = (out.errors ?? []).filter((e) => e.severity === "error").map((e) => e.formattedMessage);
console.log(JSON.stringify({ version: solc.version(), errors, compiled: Object.keys(out.contracts ?? {}).sort() }));
`;

const INTERFACES = ["IShipments", "IReadingsInbox", "IDeviceRegistry", "IP256Verifier"] as const;

/** Uses every interface (the README's example, compiled too, uses two). */
const ALL_INTERFACES_SOL = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IShipments} from "@coldchain/contracts/interfaces/IShipments.sol";
import {IReadingsInbox} from "@coldchain/contracts/interfaces/IReadingsInbox.sol";
import {IDeviceRegistry} from "@coldchain/contracts/interfaces/IDeviceRegistry.sol";
import {IP256Verifier} from "@coldchain/contracts/interfaces/IP256Verifier.sol";

contract AllInterfaces {
    function ids() external pure returns (bytes4, bytes4, bytes4, bytes4) {
        return (
            type(IShipments).interfaceId,
            type(IReadingsInbox).interfaceId,
            type(IDeviceRegistry).interfaceId,
            type(IP256Verifier).interfaceId
        );
    }
}
`;

/** The package README's fenced code blocks of one language, in order. */
function readmeBlocks(readme: string, language: string): string[] {
  return [...readme.matchAll(new RegExp("^```" + language + "\\n([\\s\\S]*?)^```$", "gm"))].map((m) => m[1] ?? "");
}

interface SolcOutput {
  contracts: Record<string, Record<string, { abi: unknown[] }>>;
}

describe("@coldchain/contracts from its tarball", function () {
  this.timeout(300_000);

  let workDir: string;
  let project: string;
  let tarball: Tarball;
  let solcVersion: string;
  let packageVersion: string;
  let moduleExample: string;

  before(async function () {
    const packageDir = await buildContractsPackage();
    packageVersion = (JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { version: string })
      .version;
    workDir = freshProject("coldchain-contracts-pack-");
    tarball = await pack(packageDir, workDir);
    console.log(
      `      @coldchain/contracts: ${kB(tarball.size)} tarball, ${tarball.entryCount} files, ${kB(tarball.unpackedSize)} unpacked`,
    );

    // The newest solc on npm (Hardhat cannot download compilers here: it runs solc-js from the package).
    const view = expectSuccess(await run("npm", ["view", "solc", "version"], { cwd: workDir }), "npm view solc");
    solcVersion = view.stdout.trim();
    expect(solcVersion, "npm's solc").to.match(/^0\.8\.\d+$/);

    project = freshProject("coldchain-contracts-consumer-");
    // Hardhat, its Ignition plugin (and what the package's module needs beside it) at the repository's versions.
    const locked = [
      "hardhat",
      "@nomicfoundation/hardhat-ignition",
      "@nomicfoundation/hardhat-verify",
      "ethers",
      "typescript",
    ].map((name) => `${name}@${lockedVersion(name)}`);
    // And the lowest compiler of the interfaces' pragma range, under another name.
    await npmInstall(project, [...locked, `solc@${solcVersion}`, `solc-floor@npm:solc@${PRAGMA_FLOOR}`, tarball.path]);
    writeFileSync(
      join(project, "hardhat.config.ts"),
      `import { createRequire } from "node:module";
import hardhatIgnition from "@nomicfoundation/hardhat-ignition";
import { defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  plugins: [hardhatIgnition],
  solidity: { version: "${solcVersion}", path: require.resolve("solc/soljson.js") },
});
`,
    );
    mkdirSync(join(project, "contracts"));
    // The README's Solidity example as it ships, and a contract using every interface.
    const readme = readFileSync(join(project, "node_modules", "@coldchain", "contracts", "README.md"), "utf8");
    const [example] = readmeBlocks(readme, "solidity");
    if (example === undefined) throw new Error("no solidity example in the package's README");
    writeFileSync(join(project, "contracts", "ReleaseGate.sol"), example);
    writeFileSync(join(project, "contracts", "AllInterfaces.sol"), ALL_INTERFACES_SOL);
    moduleExample = readmeBlocks(readme, "ts").find((b) => b.startsWith("// ignition/modules/ColdChainSuite.ts")) ?? "";
    expect(moduleExample, "the README's Ignition module example").to.not.equal("");
  });

  after(() => {
    for (const dir of [workDir, project]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("ships the interfaces with a pragma range, ABIs, the suite's artifacts and Ignition module, the README, and nothing else", () => {
    expect(PACKAGE_PRAGMA).to.equal(`pragma solidity ^${PRAGMA_FLOOR};`);
    for (const name of INTERFACES) {
      expect(tarball.files).to.include(`interfaces/${name}.sol`);
      expect(tarball.files).to.include(`abi/${name}.json`);
    }
    for (const name of ["ColdChain", "ColdChainLens", "DeviceRegistry"])
      expect(tarball.files).to.include(`abi/${name}.json`);
    expect(tarball.files).to.include.members(["package.json", "README.md"]);
    expect(
      tarball.files.filter(
        (f) =>
          !/^(interfaces\/I\w+\.sol|(abi|artifacts)\/\w+\.json|ignition\/index\.(js|d\.ts)|deployments\/[\w-]+\.json|package\.json|README\.md)$/.test(
            f,
          ),
      ),
    ).to.deep.equal([]);
    for (const name of INTERFACES) {
      const source = readFileSync(
        join(project, "node_modules", "@coldchain", "contracts", "interfaces", `${name}.sol`),
        "utf8",
      );
      expect(source).to.include(`\n${PACKAGE_PRAGMA}\n`);
    }
  });

  it("compiles a Hardhat 3 project importing the interfaces with the newest solc on npm", async function () {
    const hardhatCli = join(project, "node_modules", "hardhat", "dist", "src", "cli.js");
    const started = Date.now();
    const build = await run(process.execPath, [hardhatCli, "build", "--quiet"], { cwd: project, timeoutMs: 180_000 });
    expectSuccess(build, "hardhat build in the consumer project");
    console.log(`      compiled with solc ${solcVersion} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const name of ["ReleaseGate", "AllInterfaces"]) {
      expect(existsSync(join(project, "artifacts", "contracts", `${name}.sol`, `${name}.json`)), name).to.equal(true);
    }

    // The compiler's own view of the interfaces, from the build's solc output.
    const buildInfoDir = join(project, "artifacts", "build-info");
    const outputs = readdirSync(buildInfoDir).filter((f) => f.endsWith(".output.json"));
    expect(outputs).to.have.length(1);
    const inputs = readdirSync(buildInfoDir).filter((f) => f.endsWith(".json") && !f.endsWith(".output.json"));
    const input = JSON.parse(readFileSync(join(buildInfoDir, inputs[0] ?? ""), "utf8")) as { solcVersion: string };
    expect(input.solcVersion).to.equal(solcVersion);
    const { output } = JSON.parse(readFileSync(join(buildInfoDir, outputs[0] ?? ""), "utf8")) as { output: SolcOutput };
    for (const name of INTERFACES) {
      const sourceName = Object.keys(output.contracts).find((s) =>
        s.endsWith(`@coldchain/contracts@${packageVersion}/interfaces/${name}.sol`),
      );
      expect(sourceName, `${name}.sol among the compiled sources`).to.not.equal(undefined);
      const compiled = output.contracts[sourceName ?? ""]?.[name]?.abi;
      const packaged = JSON.parse(
        readFileSync(join(project, "node_modules", "@coldchain", "contracts", "abi", `${name}.json`), "utf8"),
      ) as unknown[];
      expect(packaged.length, `${name}'s packaged ABI`).to.be.greaterThan(0);
      expect(sortAbi(compiled ?? []), `${name}'s ABI from solc ${solcVersion}`).to.deep.equal(sortAbi(packaged));
    }
  });

  it(`compiles the interfaces with ${PRAGMA_FLOOR}, the lowest compiler their pragma accepts`, async () => {
    writeFileSync(join(project, "floor.mjs"), FLOOR_COMPILE_MJS);
    const result = expectSuccess(await run(process.execPath, ["floor.mjs"], { cwd: project }), "node floor.mjs");
    const { version, errors, compiled } = JSON.parse(result.stdout) as {
      version: string;
      errors: string[];
      compiled: string[];
    };
    expect(version).to.match(new RegExp(`^${PRAGMA_FLOOR.replaceAll(".", "\\.")}\\+`));
    expect(errors).to.deep.equal([]);
    expect(compiled).to.deep.equal(INTERFACES.map((name) => `${name}.sol`).sort());
  });

  it("deploys the suite with the package's Ignition module, in a project that does not compile it", async () => {
    mkdirSync(join(project, "ignition", "modules"), { recursive: true });
    writeFileSync(join(project, "ignition", "modules", "ColdChainSuite.ts"), moduleExample);
    // The README's module file type-checks against the package's declarations, and deploys.
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "node16",
          moduleResolution: "node16",
          target: "es2022",
          strict: true,
          skipLibCheck: true,
          noEmit: true,
        },
        files: ["ignition/modules/ColdChainSuite.ts"],
      }),
    );
    const tsc = join(project, "node_modules", "typescript", "bin", "tsc");
    expectSuccess(await run(process.execPath, [tsc, "-p", "."], { cwd: project }), "tsc in the consumer project");

    const hardhatCli = join(project, "node_modules", "hardhat", "dist", "src", "cli.js");
    const deployed = expectSuccess(
      await run(process.execPath, [hardhatCli, "ignition", "deploy", "ignition/modules/ColdChainSuite.ts"], {
        cwd: project,
        timeoutMs: 180_000,
      }),
      "hardhat ignition deploy in the consumer project",
    );
    for (const name of ["DeviceRegistry", "MktTable", "P256Fallback", "ShipmentBook", "ColdChain", "ColdChainLens"]) {
      expect(deployed.stdout).to.match(new RegExp(`ColdChainSuite#${name} - 0x[0-9a-fA-F]{40}`));
    }
  });

  it("lets plain Node import an ABI by its package path", async () => {
    writeFileSync(
      join(project, "abi.mjs"),
      `import coldChain from "@coldchain/contracts/abi/ColdChain.json" with { type: "json" };
import shipments from "@coldchain/contracts/abi/IShipments.json" with { type: "json" };
const names = (abi) => abi.filter((e) => e.type === "function").map((e) => e.name);
console.log(JSON.stringify({ coldChain: names(coldChain), shipments: names(shipments) }));
`,
    );
    const result = expectSuccess(await run(process.execPath, ["abi.mjs"], { cwd: project }), "node abi.mjs");
    const { coldChain, shipments } = JSON.parse(result.stdout) as { coldChain: string[]; shipments: string[] };
    expect(shipments).to.include.members(["shipment", "createShipment", "acceptCustody"]);
    expect(coldChain).to.include.members(["shipment", "submitReadings", "condition"]);
  });
});

/** ABI entries in a stable order (solc sorts them, but by rules that may change between versions). */
function sortAbi(abi: readonly unknown[]): unknown[] {
  return [...abi].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}
