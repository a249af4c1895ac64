/**
 * The branch measure itself (scripts/lib/branch-coverage.ts) on a tiny contract compiled in the test:
 *
 * - the branch points found (kind, outcome, line) are exactly the ones written in the fixture, Yul branches are
 *   listed as unmeasured, and the rewrite keeps the original text and line numbers;
 * - the rewritten contract behaves as the original (same results, same revert), and running it on the in-process
 *   chain emits exactly the probe tags of the outcomes taken: STATICCALLs to EDR's coverage address, read from
 *   `debug_traceTransaction` (in `npm run coverage` EDR records the same calls);
 * - buildReport turns those hits into covered / uncovered outcomes, and parseLcov/formatLcov round-trip.
 */
import { createRequire } from "node:module";

import { expect } from "chai";
import { network } from "hardhat";

import {
  type AstNode,
  buildReport,
  COVERAGE_ADDRESS,
  formatLcov,
  instrumentFile,
  parseLcov,
  parseSources,
} from "../../scripts/lib/branch-coverage.js";

const FIXTURE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

contract Fixture {
    uint256 public total;

    function run(uint256 x, bool flag) external returns (uint256 y) {
        if (x > 10) {
            y = 1;
        } else if (x == 3) y = 3;
        y += x > 5 ? 2 : 0;
        if (flag && x != 0) y += 1;
        for (uint256 i = 0; i < x && i < 3; i++) total += i;
        require(x != 7, "seven");
        total += y;
    }

    function either(uint256 a) external pure returns (bool) {
        return a == 1 || a == 2;
    }

    function yul(uint256 a) external pure returns (uint256 r) {
        assembly {
            if gt(a, 1) { r := 1 }
            switch a
            case 0 { r := 2 }
        }
    }
}
`;
/** Not under contracts/: its probe tags (sha256 of this name) never match those of a real contract. */
const FILE = "test-fixture/Fixture.sol";

/** The branch outcomes the fixture has, as "line kind outcome". */
const EXPECTED_BRANCHES = [
  "8 if true",
  "8 if false",
  "10 if true",
  "10 if false",
  "11 ternary true",
  "11 ternary false",
  "12 if true",
  "12 if false",
  "12 && right evaluated",
  "12 && short-circuit",
  "13 loop iterate",
  "13 loop exit",
  "13 && right evaluated",
  "13 && short-circuit",
  "14 require pass",
  "14 require fail",
  "19 || short-circuit",
  "19 || right evaluated",
];

const require = createRequire(import.meta.url);
const solc = require("solc") as { compile: (input: string) => string };

interface Compiled {
  abi: unknown[];
  bytecode: string;
}

function compile(source: string): Compiled {
  const input = {
    language: "Solidity",
    sources: { [FILE]: { content: source } },
    settings: { outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  const contract = output.contracts[FILE]?.Fixture;
  if (contract === undefined) throw new Error("Fixture not compiled");
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
}

describe("branch coverage measure (scripts/lib/branch-coverage.ts)", function () {
  let ast: AstNode;
  let instrumented: ReturnType<typeof instrumentFile>;

  before(async function () {
    const asts = await parseSources({ [FILE]: FIXTURE });
    const parsed = asts[FILE];
    if (parsed === undefined) throw new Error("no AST");
    ast = parsed;
    instrumented = instrumentFile(FILE, FIXTURE, ast, 7);
  });

  it("finds every branch point of the fixture, and lists Yul branches as unmeasured", function () {
    expect(instrumented.branches.map((b) => `${b.line} ${b.kind} ${b.outcome}`)).to.deep.equal(EXPECTED_BRANCHES);
    expect(new Set(instrumented.branches.map((b) => b.tag)).size).to.equal(EXPECTED_BRANCHES.length);
    expect(instrumented.unmeasured.map((u) => `${u.line} ${u.kind} ${u.outcomes}`)).to.deep.equal([
      "24 yul-if 2",
      "25 yul-switch 2",
    ]);
    expect(instrumented.branches.find((b) => b.line === 13 && b.kind === "&&")?.snippet).to.equal("i < x");
  });

  it("keeps the original text and line numbers, and appends the probe functions", function () {
    const { source, originalLines } = instrumented;
    expect(originalLines).to.equal(FIXTURE.split("\n").length - 1);
    const lines = source.split("\n");
    const original = FIXTURE.split("\n");
    for (let i = 0; i < originalLines; i++) {
      const stripped = (lines[i] ?? "").replace(/__ccB7\(0x[0-9a-f]{64}, 0x[0-9a-f]{64}, /g, "");
      // every probe adds exactly one ")" after the probed expression
      const probes = ((lines[i] ?? "").match(/__ccB7\(/g) ?? []).length;
      expect(stripped.length - probes, `line ${i + 1}`).to.equal((original[i] ?? "").length);
    }
    expect(lines.slice(originalLines).join("\n")).to.match(/function __ccB7\(uint256 t, uint256 f, bool v\) pure/);
    expect(source).to.include(COVERAGE_ADDRESS);
  });

  it("the rewritten contract behaves as the original and reports exactly the outcomes taken", async function () {
    const { ethers, provider } = await network.create();
    const [signer] = await ethers.getSigners();
    const deploy = async (source: string) => {
      const { abi, bytecode } = compile(source);
      const factory = new ethers.ContractFactory(abi as never, bytecode, signer);
      const contract = await factory.deploy();
      await contract.waitForDeployment();
      return contract as unknown as {
        run: ((x: number, flag: boolean) => Promise<{ hash: string; wait: () => Promise<unknown> }>) & {
          staticCall: (x: number, flag: boolean) => Promise<bigint>;
        };
        either: (a: number) => Promise<boolean>;
        total: () => Promise<bigint>;
      };
    };
    const plain = await deploy(FIXTURE);
    const probed = await deploy(instrumented.source);

    for (const [x, flag] of [
      [4, true],
      [3, false],
      [12, true],
    ] as const) {
      expect(await probed.run.staticCall(x, flag)).to.equal(await plain.run.staticCall(x, flag));
    }
    for (const a of [0, 1, 2, 3]) expect(await probed.either(a)).to.equal(await plain.either(a));
    await expect(probed.run.staticCall(7, false)).to.be.revertedWith("seven");

    const tagsOf = async (hash: string): Promise<Set<string>> => {
      const trace = (await provider.request({
        method: "debug_traceTransaction",
        params: [hash, { enableMemory: true }],
      })) as { structLogs: { op: string; stack?: string[]; memory?: string[] }[] };
      const tags = new Set<string>();
      for (const step of trace.structLogs) {
        if (step.op !== "STATICCALL" || step.stack === undefined) continue;
        const target = BigInt(`0x${(step.stack.at(-2) ?? "0").replace(/^0x/, "")}`);
        if (target !== BigInt(COVERAGE_ADDRESS)) continue;
        const word = step.memory?.[0];
        if (word !== undefined) tags.add(word.replace(/^0x/, "").toLowerCase());
      }
      return tags;
    };
    const tx = await probed.run(4, true);
    await tx.wait();
    expect(await probed.total()).to.equal(
      await (async () => {
        const t = await plain.run(4, true);
        await t.wait();
        return plain.total();
      })(),
    );
    const hits = new Map<string, number>();
    for (const tag of await tagsOf(tx.hash)) hits.set(tag, (hits.get(tag) ?? 0) + 1);
    const taken = instrumented.branches.filter((b) => hits.has(b.tag)).map((b) => `${b.line} ${b.kind} ${b.outcome}`);
    // x = 4, flag = true: both ifs on lines 8/10 false, 4 > 5 false, flag && 4 != 0 true, the loop runs i = 0..2
    // and leaves when i < 3 fails (i < x stays true), require passes.
    expect(taken).to.deep.equal([
      "8 if false",
      "10 if false",
      "11 ternary false",
      "12 if true",
      "12 && right evaluated",
      "13 loop iterate",
      "13 loop exit",
      "13 && right evaluated",
      "14 require pass",
    ]);

    const lcov = formatLcov([
      {
        file: FILE,
        lines: new Map([
          [8, 1],
          [9, 0],
          [10, 1],
        ]),
      },
    ]);
    const report = buildReport(parseLcov(lcov), instrumented.branches, instrumented.unmeasured, hits, {
      lines: 0.95,
      branches: 0.9,
    });
    expect(report.linesFound).to.equal(3);
    expect(report.linesHit).to.equal(2);
    expect(report.branchesFound).to.equal(EXPECTED_BRANCHES.length);
    expect(report.branchesHit).to.equal(taken.length);
    expect(report.unmeasuredOutcomes).to.equal(4);
    expect(report.files[0]?.uncovered.map((b) => `${b.line} ${b.kind} ${b.outcome}`)).to.include("14 require fail");
  });
});
