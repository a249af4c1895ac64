/**
 * `scripts/lib/suite.ts` in process (EDR, no journal, nothing written): what `npm start` and other scripts use to
 * bring up the suite — contracts, roles from the parameters (including an admin other than the deployer), and the
 * address book entry built from it. Plus the role-parameter file's validation.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import hre from "hardhat";
import { ZeroAddress, ZeroHash, id } from "ethers";

import { parseDeployment, SUITE_CONTRACTS } from "../../sdk/deployment.js";
import { buildDeployment, deploySuite, loadSuiteRoles, localRoles } from "../../scripts/lib/suite.js";
import { VACCINE_PROFILE } from "../support/deploy.js";

describe("scripts/lib/suite (in-process)", () => {
  it("deploys the suite, grants the roles and builds the Deployment, writing nothing", async () => {
    const connection = await hre.network.create();
    try {
      const [deployer, multisig, shipper] = await connection.ethers.getSigners();
      if (deployer === undefined || multisig === undefined || shipper === undefined) throw new Error("accounts");
      const roles = {
        ...localRoles(deployer.address),
        admin: multisig.address,
        shippers: [deployer.address, shipper.address],
      };
      const suite = await deploySuite(hre, connection, { network: "default", roles });
      expect(suite.executed.length).to.be.greaterThan(5);

      const { coldChain, registry, lens } = suite.instances;
      expect(await coldChain.getAddress()).to.equal(suite.contracts.ColdChain.address);
      expect(await lens.getAddress()).to.equal(suite.contracts.ColdChainLens.address);
      // The configured admin holds the admin role; the deployer renounced it after granting the others.
      expect(await coldChain.hasRole(ZeroHash, multisig.address)).to.equal(true);
      expect(await registry.hasRole(ZeroHash, multisig.address)).to.equal(true);
      expect(await coldChain.hasRole(ZeroHash, deployer.address)).to.equal(false);
      expect(await coldChain.hasRole(id("SHIPPER_ROLE"), shipper.address)).to.equal(true);
      // The deployer (QA) can use the suite right away.
      await (await coldChain.createProfile(VACCINE_PROFILE)).wait();

      const deployment = await buildDeployment(connection.ethers.provider, { network: "default", suite });
      expect(parseDeployment(deployment)).to.deep.equal(deployment);
      expect(deployment.chainId).to.equal(31337);
      expect(deployment.features.p256Precompile).to.equal(true);
      for (const name of SUITE_CONTRACTS) {
        const receipt = await connection.ethers.provider.getTransactionReceipt(
          deployment.contracts[name].transactionHash,
        );
        expect(receipt?.contractAddress, name).to.equal(deployment.contracts[name].address);
      }
      // A re-run after a version bump keeps the recorded abi of contracts that were not redeployed.
      const bumped = await buildDeployment(connection.ethers.provider, {
        network: "default",
        suite,
        existing: deployment,
        version: "9.9.9",
      });
      expect(bumped.contracts).to.deep.equal(deployment.contracts);
      const fresh = await buildDeployment(connection.ethers.provider, { network: "default", suite, version: "9.9.9" });
      expect(fresh.contracts.ColdChain.abi).to.equal("ColdChain@9.9.9");
      expect(deployment.roles).to.deep.include({
        contract: "ColdChain",
        role: "DEFAULT_ADMIN_ROLE",
        account: multisig.address,
      });
      expect(deployment.roles).to.deep.include({
        contract: "ColdChain",
        role: "SHIPPER_ROLE",
        account: shipper.address,
      });
      expect(deployment.roles.some((r) => r.role === "DEFAULT_ADMIN_ROLE" && r.account === deployer.address)).to.equal(
        false,
      );
    } finally {
      await connection.close();
    }
  });

  it("explains a failed Ignition reconciliation in one line with what to do", async () => {
    const connection = await hre.network.create();
    const journalDir = mkdtempSync(join(tmpdir(), "coldchain-journal-"));
    try {
      const [deployer, other] = await connection.ethers.getSigners();
      if (deployer === undefined || other === undefined) throw new Error("accounts");
      await deploySuite(hre, connection, { network: "default", roles: localRoles(deployer.address), journalDir });
      // Same journal, another deployer: every recorded future was sent from the first one.
      const error = await deploySuite(hre, connection, {
        network: "default",
        roles: localRoles(deployer.address),
        journalDir,
        deployer: other.address,
      }).then(
        () => expect.fail("a different deployer must not reconcile"),
        (e: unknown) => e as Error,
      );
      expect(error.message.split("\n")).to.have.length(1);
      expect(error.message).to.match(
        /^Ignition reconciliation failed against .*coldchain-journal-.*: ColdChainSuite#\w+: .+ \(\+\d+ more\); the deployer changed: deploy with the original deployer's key/,
      );
      expect(error.message).not.to.include("{");
    } finally {
      await connection.close();
      rmSync(journalDir, { recursive: true, force: true });
    }
  });

  it("reads role parameters: defaults on local networks, a file required elsewhere, bad files named", () => {
    const deployer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    const dir = mkdtempSync(join(tmpdir(), "coldchain-params-"));
    expect(loadSuiteRoles("localhost", deployer, join(dir, "none.json"))).to.deep.equal(localRoles(deployer));
    expect(() => loadSuiteRoles("sepolia", deployer, join(dir, "none.json"))).to.throw(
      /no role parameters for "sepolia": create .*none\.json/,
    );
    const good = join(dir, "good.json");
    writeFileSync(good, JSON.stringify({ ColdChainSuite: { qa: [deployer.toLowerCase()] } }));
    expect(loadSuiteRoles("sepolia", deployer, good)).to.deep.equal({
      admin: deployer,
      deviceManagers: [],
      guardians: [],
      shippers: [],
      qa: [deployer],
    });
    const typo = join(dir, "typo.json");
    writeFileSync(typo, JSON.stringify({ ColdChainSuite: { shipper: [deployer] } }));
    expect(() => loadSuiteRoles("sepolia", deployer, typo)).to.throw(/typo\.json: ColdChainSuite: Unrecognized key/);

    // Nobody holds the key of the zero address, the burn address or the example's placeholders.
    const zero = join(dir, "zero.json");
    writeFileSync(zero, JSON.stringify({ ColdChainSuite: { admin: ZeroAddress } }));
    expect(() => loadSuiteRoles("sepolia", deployer, zero)).to.throw(
      /zero\.json: ColdChainSuite\.admin: 0x0{40} is the zero address, not a real account/,
    );
    const dead = join(dir, "dead.json");
    writeFileSync(
      dead,
      JSON.stringify({ ColdChainSuite: { shippers: [deployer, "0x000000000000000000000000000000000000dead"] } }),
    );
    expect(() => loadSuiteRoles("sepolia", deployer, dead)).to.throw(
      /dead\.json: ColdChainSuite\.shippers\.1: 0x0{36}dEaD is the 0x…dEaD burn address/,
    );
    const example = join(import.meta.dirname, "..", "..", "ignition", "parameters", "example.json");
    expect(() => loadSuiteRoles("sepolia", deployer, example)).to.throw(
      /example\.json: ColdChainSuite\.admin: .*not a real account/,
    );
  });
});
