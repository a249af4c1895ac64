/**
 * ColdChain's constructor refuses a configuration it cannot work with (found untested by `npm run coverage`): a
 * zero admin, a registry or P-256 fallback without code, an MKT table that is not an MktTable deployment.
 */
import { expect } from "chai";
import { network } from "hardhat";

const { ethers } = await network.create();

describe("ColdChain constructor checks (coverage)", () => {
  it("reverts with ColdChainConfigInvalid naming the bad argument, and deploys with good ones", async () => {
    const [admin, eoa] = await ethers.getSigners();
    if (admin === undefined || eoa === undefined) throw new Error("the test network needs two accounts");
    const registry = await (await ethers.deployContract("DeviceRegistry", [admin.address])).getAddress();
    const mktTable = await (await ethers.deployContract("MktTable")).getAddress();
    const fallback = await (await ethers.deployContract("P256Fallback")).getAddress();
    const shipmentBook = await (await ethers.deployContract("ShipmentBook")).getAddress();
    const factory = await ethers.getContractFactory("ColdChain", { libraries: { ShipmentBook: shipmentBook } });
    const cases: [string, [string, string, string, string]][] = [
      ["admin", [ethers.ZeroAddress, registry, mktTable, fallback]],
      ["registry", [admin.address, eoa.address, mktTable, fallback]],
      ["mktTable", [admin.address, registry, fallback, fallback]],
      ["p256Fallback", [admin.address, registry, mktTable, eoa.address]],
    ];
    for (const [field, args] of cases) {
      await expect(factory.deploy(...args), field)
        .to.be.revertedWithCustomError(factory, "ColdChainConfigInvalid")
        .withArgs(field);
    }
    const coldChain = await factory.deploy(admin.address, registry, mktTable, fallback);
    expect(await coldChain.hasRole(await coldChain.DEFAULT_ADMIN_ROLE(), admin.address)).to.equal(true);
  });
});
