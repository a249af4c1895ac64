/**
 * DeviceRegistry: registration with both key types, rotation, revocation, ownership transfer, views, pause and
 * role gating. Every revert path of IDeviceRegistry has a test here.
 */
import { p256 } from "@noble/curves/nist.js";
import { expect } from "chai";
import { network } from "hardhat";

import { deploySuite } from "./support/deploy.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

async function suiteFixture() {
  return deploySuite(connection);
}

const KeyType = { None: 0n, Secp256k1: 1n, P256: 2n } as const;
const DEVICE_ID = 0x1001n;
const OTHER_DEVICE_ID = 0x1002n;
const INTERVAL_SECONDS = 300n;
const MAX_INTERVAL_SECONDS = 86_400n;
const ZERO_BYTES32 = ethers.ZeroHash;
/** secp256r1 field prime: coordinates must be below it. */
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;

interface P256Key {
  qx: string;
  qy: string;
}

/** A fresh P-256 key pair's public key as the registry stores it (x, y as bytes32). */
function randomP256Key(): P256Key {
  const publicKey = p256.getPublicKey(p256.utils.randomSecretKey(), false); // 0x04 || x || y
  return {
    qx: ethers.hexlify(publicKey.subarray(1, 33)),
    qy: ethers.hexlify(publicKey.subarray(33, 65)),
  };
}

function bytes32(value: bigint): string {
  return ethers.toBeHex(value, 32);
}

function randomSigner(): string {
  return ethers.Wallet.createRandom().address;
}

/** Suite plus one secp256k1 device (DEVICE_ID, owned by deviceOwner) and one P-256 device (OTHER_DEVICE_ID). */
async function registeredFixture() {
  const s = await deploySuite(connection);
  const signer = randomSigner();
  const p256Key = randomP256Key();
  await s.registry
    .connect(s.deviceManager)
    .registerSecp256k1Device(DEVICE_ID, s.deviceOwner.address, INTERVAL_SECONDS, signer);
  await s.registry
    .connect(s.deviceManager)
    .registerP256Device(OTHER_DEVICE_ID, s.deviceOwner.address, INTERVAL_SECONDS, p256Key.qx, p256Key.qy);
  return { ...s, signer, p256Key };
}

describe("DeviceRegistry", () => {
  describe("constants and roles", () => {
    it("exposes the role ids and the one-day interval bound", async () => {
      const { registry } = await networkHelpers.loadFixture(suiteFixture);
      expect(await registry.DEVICE_MANAGER_ROLE()).to.equal(ethers.id("DEVICE_MANAGER_ROLE"));
      expect(await registry.GUARDIAN_ROLE()).to.equal(ethers.id("GUARDIAN_ROLE"));
      expect(await registry.MAX_INTERVAL_SECONDS()).to.equal(MAX_INTERVAL_SECONDS);
    });

    it("gives the constructor's admin DEFAULT_ADMIN_ROLE", async () => {
      const { registry, admin, stranger } = await networkHelpers.loadFixture(suiteFixture);
      const adminRole = await registry.DEFAULT_ADMIN_ROLE();
      expect(await registry.hasRole(adminRole, admin.address)).to.equal(true);
      expect(await registry.hasRole(adminRole, stranger.address)).to.equal(false);
    });
  });

  describe("registerSecp256k1Device", () => {
    it("registers the device and emits DeviceRegistered and DeviceKeySet", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const signer = randomSigner();
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, signer),
      )
        .to.emit(registry, "DeviceRegistered")
        .withArgs(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS)
        .and.to.emit(registry, "DeviceKeySet")
        .withArgs(DEVICE_ID, KeyType.Secp256k1, signer, ZERO_BYTES32, ZERO_BYTES32);
    });

    it("stores owner, registration time, interval and signer", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const signer = randomSigner();
      await registry
        .connect(deviceManager)
        .registerSecp256k1Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, signer);
      const registeredAt = await networkHelpers.time.latest();

      const info = await registry.device(DEVICE_ID);
      expect(info.owner).to.equal(deviceOwner.address);
      expect(info.registeredAt).to.equal(BigInt(registeredAt));
      expect(info.keyType).to.equal(KeyType.Secp256k1);
      expect(info.intervalSeconds).to.equal(INTERVAL_SECONDS);
      expect(info.revokedAtBlock).to.equal(0n);
      expect(info.signer).to.equal(signer);
      expect(info.qx).to.equal(ZERO_BYTES32);
      expect(info.qy).to.equal(ZERO_BYTES32);

      const key = await registry.verificationKey(DEVICE_ID);
      expect(key.keyType).to.equal(KeyType.Secp256k1);
      expect(key.intervalSeconds).to.equal(INTERVAL_SECONDS);
      expect(key.revokedAtBlock).to.equal(0n);
      expect(key.signer).to.equal(signer);
      expect(key.qx).to.equal(ZERO_BYTES32);
      expect(key.qy).to.equal(ZERO_BYTES32);
      expect(await registry.isActive(DEVICE_ID)).to.equal(true);
    });

    it("accepts the interval bounds 1 s and MAX_INTERVAL_SECONDS", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      await registry.connect(deviceManager).registerSecp256k1Device(1n, deviceOwner.address, 1n, randomSigner());
      await registry
        .connect(deviceManager)
        .registerSecp256k1Device(2n, deviceOwner.address, MAX_INTERVAL_SECONDS, randomSigner());
      expect((await registry.device(1n)).intervalSeconds).to.equal(1n);
      expect((await registry.device(2n)).intervalSeconds).to.equal(MAX_INTERVAL_SECONDS);
    });

    it("accepts the largest uint64 device id", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const maxId = 2n ** 64n - 1n;
      await registry
        .connect(deviceManager)
        .registerSecp256k1Device(maxId, deviceOwner.address, INTERVAL_SECONDS, randomSigner());
      expect(await registry.isActive(maxId)).to.equal(true);
    });

    it("reverts with AccessControlUnauthorizedAccount when the caller is not a device manager", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        registry
          .connect(deviceOwner)
          .registerSecp256k1Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, randomSigner()),
      )
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(deviceOwner.address, await registry.DEVICE_MANAGER_ROLE());
    });

    it("reverts with DeviceIdZero for device id 0", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(0n, deviceOwner.address, INTERVAL_SECONDS, randomSigner()),
      ).to.be.revertedWithCustomError(registry, "DeviceIdZero");
    });

    it("reverts with DeviceAlreadyRegistered for an id already in use, whatever its key type", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, randomSigner()),
      )
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRegistered")
        .withArgs(DEVICE_ID);
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(OTHER_DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, randomSigner()),
      )
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRegistered")
        .withArgs(OTHER_DEVICE_ID);
    });

    it("reverts with DeviceAlreadyRegistered for a revoked device's id", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(deviceOwner).revokeDevice(DEVICE_ID);
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, randomSigner()),
      )
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRegistered")
        .withArgs(DEVICE_ID);
    });

    it("reverts with DeviceOwnerZero for a zero owner", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(DEVICE_ID, ethers.ZeroAddress, INTERVAL_SECONDS, randomSigner()),
      ).to.be.revertedWithCustomError(registry, "DeviceOwnerZero");
    });

    it("reverts with DeviceIntervalInvalid for a zero interval", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        registry.connect(deviceManager).registerSecp256k1Device(DEVICE_ID, deviceOwner.address, 0n, randomSigner()),
      )
        .to.be.revertedWithCustomError(registry, "DeviceIntervalInvalid")
        .withArgs(0n);
    });

    it("reverts with DeviceIntervalInvalid for an interval over one day", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(DEVICE_ID, deviceOwner.address, MAX_INTERVAL_SECONDS + 1n, randomSigner()),
      )
        .to.be.revertedWithCustomError(registry, "DeviceIntervalInvalid")
        .withArgs(MAX_INTERVAL_SECONDS + 1n);
    });

    it("reverts with DeviceSignerZero for a zero signer", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        registry
          .connect(deviceManager)
          .registerSecp256k1Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(registry, "DeviceSignerZero");
    });
  });

  describe("registerP256Device", () => {
    it("registers the device and emits DeviceRegistered and DeviceKeySet with the public key", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const { qx, qy } = randomP256Key();
      await expect(
        registry.connect(deviceManager).registerP256Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, qx, qy),
      )
        .to.emit(registry, "DeviceRegistered")
        .withArgs(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS)
        .and.to.emit(registry, "DeviceKeySet")
        .withArgs(DEVICE_ID, KeyType.P256, ethers.ZeroAddress, qx, qy);
    });

    it("stores the public key and no signer address", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const { qx, qy } = randomP256Key();
      await registry
        .connect(deviceManager)
        .registerP256Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, qx, qy);

      const info = await registry.device(DEVICE_ID);
      expect(info.owner).to.equal(deviceOwner.address);
      expect(info.keyType).to.equal(KeyType.P256);
      expect(info.signer).to.equal(ethers.ZeroAddress);
      expect(info.qx).to.equal(qx);
      expect(info.qy).to.equal(qy);

      const key = await registry.verificationKey(DEVICE_ID);
      expect(key.keyType).to.equal(KeyType.P256);
      expect(key.intervalSeconds).to.equal(INTERVAL_SECONDS);
      expect(key.signer).to.equal(ethers.ZeroAddress);
      expect(key.qx).to.equal(qx);
      expect(key.qy).to.equal(qy);
      expect(await registry.isActive(DEVICE_ID)).to.equal(true);
    });

    it("reverts with DeviceP256KeyInvalid for a point that is not on the curve", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const { qx, qy } = randomP256Key();
      const offCurveY = bytes32(BigInt(qy) ^ 1n);
      await expect(
        registry
          .connect(deviceManager)
          .registerP256Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, qx, offCurveY),
      )
        .to.be.revertedWithCustomError(registry, "DeviceP256KeyInvalid")
        .withArgs(qx, offCurveY);
    });

    it("reverts with DeviceP256KeyInvalid for the zero point", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        registry
          .connect(deviceManager)
          .registerP256Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, ZERO_BYTES32, ZERO_BYTES32),
      )
        .to.be.revertedWithCustomError(registry, "DeviceP256KeyInvalid")
        .withArgs(ZERO_BYTES32, ZERO_BYTES32);
    });

    it("reverts with DeviceP256KeyInvalid for a coordinate not below the field prime", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const { qy } = randomP256Key();
      const qx = bytes32(P256_P);
      await expect(
        registry.connect(deviceManager).registerP256Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, qx, qy),
      )
        .to.be.revertedWithCustomError(registry, "DeviceP256KeyInvalid")
        .withArgs(qx, qy);
    });

    it("reverts with AccessControlUnauthorizedAccount when the caller is not a device manager", async () => {
      const { registry, stranger, deviceOwner } = await networkHelpers.loadFixture(suiteFixture);
      const { qx, qy } = randomP256Key();
      await expect(
        registry.connect(stranger).registerP256Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, qx, qy),
      )
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, await registry.DEVICE_MANAGER_ROLE());
    });

    it("reverts with DeviceIdZero, DeviceAlreadyRegistered, DeviceOwnerZero and DeviceIntervalInvalid", async () => {
      const { registry, deviceManager, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const { qx, qy } = randomP256Key();
      const manager = registry.connect(deviceManager);
      await expect(
        manager.registerP256Device(0n, deviceOwner.address, INTERVAL_SECONDS, qx, qy),
      ).to.be.revertedWithCustomError(registry, "DeviceIdZero");
      await expect(manager.registerP256Device(DEVICE_ID, deviceOwner.address, INTERVAL_SECONDS, qx, qy))
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRegistered")
        .withArgs(DEVICE_ID);
      await expect(
        manager.registerP256Device(0x2000n, ethers.ZeroAddress, INTERVAL_SECONDS, qx, qy),
      ).to.be.revertedWithCustomError(registry, "DeviceOwnerZero");
      await expect(manager.registerP256Device(0x2000n, deviceOwner.address, 0n, qx, qy))
        .to.be.revertedWithCustomError(registry, "DeviceIntervalInvalid")
        .withArgs(0n);
      await expect(manager.registerP256Device(0x2000n, deviceOwner.address, MAX_INTERVAL_SECONDS + 1n, qx, qy))
        .to.be.revertedWithCustomError(registry, "DeviceIntervalInvalid")
        .withArgs(MAX_INTERVAL_SECONDS + 1n);
    });
  });

  describe("rotateSecp256k1Key", () => {
    it("lets the owner rotate the key and emits DeviceKeySet", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const next = randomSigner();
      await expect(registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, next))
        .to.emit(registry, "DeviceKeySet")
        .withArgs(DEVICE_ID, KeyType.Secp256k1, next, ZERO_BYTES32, ZERO_BYTES32);
      expect((await registry.verificationKey(DEVICE_ID)).signer).to.equal(next);
    });

    it("lets a device manager rotate any device's key", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      const next = randomSigner();
      await expect(registry.connect(deviceManager).rotateSecp256k1Key(DEVICE_ID, next))
        .to.emit(registry, "DeviceKeySet")
        .withArgs(DEVICE_ID, KeyType.Secp256k1, next, ZERO_BYTES32, ZERO_BYTES32);
      expect((await registry.device(DEVICE_ID)).signer).to.equal(next);
    });

    it("switches a P-256 device to secp256k1 and clears its P-256 key", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const next = randomSigner();
      await registry.connect(deviceOwner).rotateSecp256k1Key(OTHER_DEVICE_ID, next);
      const info = await registry.device(OTHER_DEVICE_ID);
      expect(info.keyType).to.equal(KeyType.Secp256k1);
      expect(info.signer).to.equal(next);
      expect(info.qx).to.equal(ZERO_BYTES32);
      expect(info.qy).to.equal(ZERO_BYTES32);
      const key = await registry.verificationKey(OTHER_DEVICE_ID);
      expect(key.keyType).to.equal(KeyType.Secp256k1);
      expect(key.qx).to.equal(ZERO_BYTES32);
      expect(key.qy).to.equal(ZERO_BYTES32);
    });

    it("keeps owner, registration time and interval", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const before = await registry.device(DEVICE_ID);
      await networkHelpers.time.increase(3600);
      await registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, randomSigner());
      const after = await registry.device(DEVICE_ID);
      expect(after.owner).to.equal(before.owner);
      expect(after.registeredAt).to.equal(before.registeredAt);
      expect(after.intervalSeconds).to.equal(before.intervalSeconds);
    });

    it("reverts with DeviceUnauthorized when a stranger rotates", async () => {
      const { registry, stranger } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(stranger).rotateSecp256k1Key(DEVICE_ID, randomSigner()))
        .to.be.revertedWithCustomError(registry, "DeviceUnauthorized")
        .withArgs(DEVICE_ID, stranger.address);
    });

    it("reverts with DeviceUnauthorized when the registry admin (not a manager) rotates", async () => {
      const { registry, admin } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(admin).rotateSecp256k1Key(DEVICE_ID, randomSigner()))
        .to.be.revertedWithCustomError(registry, "DeviceUnauthorized")
        .withArgs(DEVICE_ID, admin.address);
    });

    it("reverts with DeviceSignerZero for a zero signer", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      await expect(
        registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(registry, "DeviceSignerZero");
    });

    it("reverts with DeviceUnknown for an unregistered device", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(deviceManager).rotateSecp256k1Key(0x9999n, randomSigner()))
        .to.be.revertedWithCustomError(registry, "DeviceUnknown")
        .withArgs(0x9999n);
    });

    it("reverts with DeviceAlreadyRevoked for a revoked device", async () => {
      const { registry, deviceOwner, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(deviceOwner).revokeDevice(DEVICE_ID);
      await expect(registry.connect(deviceManager).rotateSecp256k1Key(DEVICE_ID, randomSigner()))
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRevoked")
        .withArgs(DEVICE_ID);
    });
  });

  describe("rotateP256Key", () => {
    it("lets the owner rotate to a new P-256 key and emits DeviceKeySet", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const { qx, qy } = randomP256Key();
      await expect(registry.connect(deviceOwner).rotateP256Key(OTHER_DEVICE_ID, qx, qy))
        .to.emit(registry, "DeviceKeySet")
        .withArgs(OTHER_DEVICE_ID, KeyType.P256, ethers.ZeroAddress, qx, qy);
      const key = await registry.verificationKey(OTHER_DEVICE_ID);
      expect(key.qx).to.equal(qx);
      expect(key.qy).to.equal(qy);
    });

    it("lets a device manager switch a secp256k1 device to P-256 and clears its signer", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      const { qx, qy } = randomP256Key();
      await expect(registry.connect(deviceManager).rotateP256Key(DEVICE_ID, qx, qy))
        .to.emit(registry, "DeviceKeySet")
        .withArgs(DEVICE_ID, KeyType.P256, ethers.ZeroAddress, qx, qy);
      const info = await registry.device(DEVICE_ID);
      expect(info.keyType).to.equal(KeyType.P256);
      expect(info.signer).to.equal(ethers.ZeroAddress);
      expect(info.qx).to.equal(qx);
      expect(info.qy).to.equal(qy);
    });

    it("reverts with DeviceP256KeyInvalid for a point that is not on the curve", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const { qx } = randomP256Key();
      const qy = bytes32(1n);
      await expect(registry.connect(deviceOwner).rotateP256Key(OTHER_DEVICE_ID, qx, qy))
        .to.be.revertedWithCustomError(registry, "DeviceP256KeyInvalid")
        .withArgs(qx, qy);
    });

    it("reverts with DeviceUnauthorized when a stranger rotates", async () => {
      const { registry, stranger } = await networkHelpers.loadFixture(registeredFixture);
      const { qx, qy } = randomP256Key();
      await expect(registry.connect(stranger).rotateP256Key(OTHER_DEVICE_ID, qx, qy))
        .to.be.revertedWithCustomError(registry, "DeviceUnauthorized")
        .withArgs(OTHER_DEVICE_ID, stranger.address);
    });

    it("reverts with DeviceUnknown for an unregistered device", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      const { qx, qy } = randomP256Key();
      await expect(registry.connect(deviceManager).rotateP256Key(0x9999n, qx, qy))
        .to.be.revertedWithCustomError(registry, "DeviceUnknown")
        .withArgs(0x9999n);
    });

    it("reverts with DeviceAlreadyRevoked for a revoked device", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(deviceOwner).revokeDevice(OTHER_DEVICE_ID);
      const { qx, qy } = randomP256Key();
      await expect(registry.connect(deviceOwner).rotateP256Key(OTHER_DEVICE_ID, qx, qy))
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRevoked")
        .withArgs(OTHER_DEVICE_ID);
    });
  });

  describe("revokeDevice", () => {
    it("records the block number it was mined in and emits DeviceRevoked", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const tx = await registry.connect(deviceOwner).revokeDevice(DEVICE_ID);
      const receipt = await tx.wait();
      const revokedAtBlock = BigInt(receipt?.blockNumber ?? 0);
      expect(revokedAtBlock).to.be.greaterThan(0n);
      await expect(tx).to.emit(registry, "DeviceRevoked").withArgs(DEVICE_ID, revokedAtBlock);
      expect((await registry.device(DEVICE_ID)).revokedAtBlock).to.equal(revokedAtBlock);
      expect((await registry.verificationKey(DEVICE_ID)).revokedAtBlock).to.equal(revokedAtBlock);
    });

    it("makes isActive false but keeps the key readable", async () => {
      const { registry, deviceManager, signer } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(deviceManager).revokeDevice(DEVICE_ID);
      expect(await registry.isActive(DEVICE_ID)).to.equal(false);
      const key = await registry.verificationKey(DEVICE_ID);
      expect(key.keyType).to.equal(KeyType.Secp256k1);
      expect(key.signer).to.equal(signer);
      expect(await registry.isActive(OTHER_DEVICE_ID)).to.equal(true);
    });

    it("lets a device manager revoke any device", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(deviceManager).revokeDevice(OTHER_DEVICE_ID)).to.emit(registry, "DeviceRevoked");
      expect(await registry.isActive(OTHER_DEVICE_ID)).to.equal(false);
    });

    it("reverts with DeviceUnauthorized when a stranger revokes", async () => {
      const { registry, stranger } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(stranger).revokeDevice(DEVICE_ID))
        .to.be.revertedWithCustomError(registry, "DeviceUnauthorized")
        .withArgs(DEVICE_ID, stranger.address);
    });

    it("reverts with DeviceUnknown for an unregistered device", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(deviceManager).revokeDevice(0x9999n))
        .to.be.revertedWithCustomError(registry, "DeviceUnknown")
        .withArgs(0x9999n);
    });

    it("reverts with DeviceAlreadyRevoked when revoked twice", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(deviceOwner).revokeDevice(DEVICE_ID);
      await expect(registry.connect(deviceOwner).revokeDevice(DEVICE_ID))
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRevoked")
        .withArgs(DEVICE_ID);
    });
  });

  describe("transferDeviceOwnership", () => {
    it("changes the owner and emits DeviceOwnerChanged", async () => {
      const { registry, deviceOwner, owner } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(deviceOwner).transferDeviceOwnership(DEVICE_ID, owner.address))
        .to.emit(registry, "DeviceOwnerChanged")
        .withArgs(DEVICE_ID, deviceOwner.address, owner.address);
      expect((await registry.device(DEVICE_ID)).owner).to.equal(owner.address);
    });

    it("hands the owner's rights to the new owner and takes them from the old one", async () => {
      const { registry, deviceOwner, owner } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(deviceOwner).transferDeviceOwnership(DEVICE_ID, owner.address);
      await expect(registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, randomSigner()))
        .to.be.revertedWithCustomError(registry, "DeviceUnauthorized")
        .withArgs(DEVICE_ID, deviceOwner.address);
      await expect(registry.connect(owner).rotateSecp256k1Key(DEVICE_ID, randomSigner())).to.emit(
        registry,
        "DeviceKeySet",
      );
      await expect(registry.connect(owner).revokeDevice(DEVICE_ID)).to.emit(registry, "DeviceRevoked");
    });

    it("lets a device manager transfer any device", async () => {
      const { registry, deviceManager, deviceOwner, owner } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(deviceManager).transferDeviceOwnership(OTHER_DEVICE_ID, owner.address))
        .to.emit(registry, "DeviceOwnerChanged")
        .withArgs(OTHER_DEVICE_ID, deviceOwner.address, owner.address);
    });

    it("reverts with DeviceOwnerZero for a zero new owner", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      await expect(
        registry.connect(deviceOwner).transferDeviceOwnership(DEVICE_ID, ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(registry, "DeviceOwnerZero");
    });

    it("reverts with DeviceUnauthorized when a stranger transfers", async () => {
      const { registry, stranger } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(stranger).transferDeviceOwnership(DEVICE_ID, stranger.address))
        .to.be.revertedWithCustomError(registry, "DeviceUnauthorized")
        .withArgs(DEVICE_ID, stranger.address);
    });

    it("reverts with DeviceUnknown for an unregistered device", async () => {
      const { registry, deviceManager, owner } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(deviceManager).transferDeviceOwnership(0x9999n, owner.address))
        .to.be.revertedWithCustomError(registry, "DeviceUnknown")
        .withArgs(0x9999n);
    });

    it("reverts with DeviceAlreadyRevoked for a revoked device", async () => {
      const { registry, deviceOwner, owner } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(deviceOwner).revokeDevice(DEVICE_ID);
      await expect(registry.connect(deviceOwner).transferDeviceOwnership(DEVICE_ID, owner.address))
        .to.be.revertedWithCustomError(registry, "DeviceAlreadyRevoked")
        .withArgs(DEVICE_ID);
    });
  });

  describe("views", () => {
    it("verificationKey returns keyType None and zeros for an unknown device without reverting", async () => {
      const { registry } = await networkHelpers.loadFixture(registeredFixture);
      const key = await registry.verificationKey(0x9999n);
      expect(key.keyType).to.equal(KeyType.None);
      expect(key.intervalSeconds).to.equal(0n);
      expect(key.revokedAtBlock).to.equal(0n);
      expect(key.signer).to.equal(ethers.ZeroAddress);
      expect(key.qx).to.equal(ZERO_BYTES32);
      expect(key.qy).to.equal(ZERO_BYTES32);
      expect((await registry.verificationKey(0n)).keyType).to.equal(KeyType.None);
    });

    it("device reverts with DeviceUnknown for an unknown device", async () => {
      const { registry } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.device(0x9999n)).to.be.revertedWithCustomError(registry, "DeviceUnknown").withArgs(0x9999n);
      await expect(registry.device(0n)).to.be.revertedWithCustomError(registry, "DeviceUnknown").withArgs(0n);
    });

    it("isActive is false for an unknown device", async () => {
      const { registry } = await networkHelpers.loadFixture(registeredFixture);
      expect(await registry.isActive(0x9999n)).to.equal(false);
      expect(await registry.isActive(0n)).to.equal(false);
    });
  });

  describe("key history (keys bound to time)", () => {
    it("verificationKeyAt answers the key of each observation time, with its validity; rotations are not retroactive", async () => {
      const { registry, deviceOwner, signer } = await networkHelpers.loadFixture(registeredFixture);
      await networkHelpers.time.increase(3600);
      const second = randomSigner();
      await (await registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, second)).wait();
      const t1 = BigInt(await networkHelpers.time.latest());
      await networkHelpers.time.increase(3600);
      const p256Key = randomP256Key();
      await expect(registry.connect(deviceOwner).rotateP256Key(DEVICE_ID, p256Key.qx, p256Key.qy))
        .to.emit(registry, "DeviceKeyValidFrom")
        .withArgs(DEVICE_ID, 2n, BigInt(await networkHelpers.time.latest()) + 1n);
      const t2 = BigInt(await networkHelpers.time.latest());
      const at = async (t: bigint) => {
        const k = await registry.verificationKeyAt(DEVICE_ID, t);
        return [k.keyType, k.signer, k.qx, k.keyValidFrom, k.keyValidUntil];
      };
      // The first key verifies everything before the first rotation, however early.
      expect(await at(0n)).to.deep.equal([KeyType.Secp256k1, signer, ZERO_BYTES32, 0n, t1]);
      expect(await at(t1 - 1n)).to.deep.equal([KeyType.Secp256k1, signer, ZERO_BYTES32, 0n, t1]);
      expect(await at(t1)).to.deep.equal([KeyType.Secp256k1, second, ZERO_BYTES32, t1, t2]);
      expect(await at(t2 - 1n)).to.deep.equal([KeyType.Secp256k1, second, ZERO_BYTES32, t1, t2]);
      expect(await at(t2)).to.deep.equal([KeyType.P256, ethers.ZeroAddress, p256Key.qx, t2, 0n]);
      const current = await registry.verificationKey(DEVICE_ID);
      expect([current.keyType, current.keyValidFrom, current.revokedFrom]).to.deep.equal([KeyType.P256, t2, 0n]);
    });

    it("two rotations in one block leave one key from that moment", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      await networkHelpers.time.increase(3600);
      const [a, b] = [randomSigner(), randomSigner()];
      await connection.provider.request({ method: "evm_setAutomine", params: [false] });
      try {
        await registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, a, { gasLimit: 300_000 });
        await registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, b, { gasLimit: 300_000 });
        await networkHelpers.mine();
      } finally {
        await connection.provider.request({ method: "evm_setAutomine", params: [true] });
      }
      const now = BigInt(await networkHelpers.time.latest());
      const k = await registry.verificationKeyAt(DEVICE_ID, now);
      expect([k.signer, k.keyValidFrom, k.keyValidUntil]).to.deep.equal([b, now, 0n]);
      expect((await registry.verificationKeyAt(DEVICE_ID, now - 1n)).keyValidUntil).to.equal(now);
    });

    it("reverts with DeviceKeyHistoryFull after MAX_KEYS_PER_DEVICE keys", async () => {
      const { registry, deviceOwner } = await networkHelpers.loadFixture(registeredFixture);
      const max = Number(await registry.MAX_KEYS_PER_DEVICE());
      for (let i = 1; i < max; i++) {
        await (await registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, randomSigner())).wait();
      }
      await expect(registry.connect(deviceOwner).rotateSecp256k1Key(DEVICE_ID, randomSigner()))
        .to.be.revertedWithCustomError(registry, "DeviceKeyHistoryFull")
        .withArgs(DEVICE_ID);
    });

    it("verificationKeyAt of an unknown device answers no key; revokeDeviceFrom(0) distrusts from the first second", async () => {
      const { registry, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      const unknown = await registry.verificationKeyAt(0x9999n, 1000n);
      expect([unknown.keyType, unknown.signer, unknown.keyValidFrom]).to.deep.equal([
        KeyType.None,
        ethers.ZeroAddress,
        0n,
      ]);
      await (await registry.connect(deviceManager).revokeDeviceFrom(DEVICE_ID, 0n)).wait();
      expect((await registry.verificationKey(DEVICE_ID)).revokedFrom).to.equal(1n);
    });

    it("mayBind: the owner itself, or a shipper the owner approved", async () => {
      const { registry, deviceOwner, shipper } = await networkHelpers.loadFixture(registeredFixture);
      expect(await registry.mayBind(DEVICE_ID, deviceOwner.address)).to.equal(true);
      expect(await registry.mayBind(DEVICE_ID, shipper.address)).to.equal(true); // deploySuite approved it
      await (await registry.connect(deviceOwner).setShipperApproval(shipper.address, false)).wait();
      expect(await registry.mayBind(DEVICE_ID, shipper.address)).to.equal(false);
    });

    it("revokeDevice distrusts from now; revokeDeviceFrom names an earlier time (device manager only)", async () => {
      const { registry, deviceOwner, deviceManager } = await networkHelpers.loadFixture(registeredFixture);
      await (await registry.connect(deviceOwner).revokeDevice(DEVICE_ID)).wait();
      const now = BigInt(await networkHelpers.time.latest());
      expect((await registry.verificationKey(DEVICE_ID)).revokedFrom).to.equal(now);
      const earlier = now - 100n;
      await expect(registry.connect(deviceManager).revokeDeviceFrom(OTHER_DEVICE_ID, earlier))
        .to.emit(registry, "DeviceDistrusted")
        .withArgs(OTHER_DEVICE_ID, earlier, deviceManager.address);
      expect((await registry.verificationKeyAt(OTHER_DEVICE_ID, 0n)).revokedFrom).to.equal(earlier);
    });
  });

  describe("pause", () => {
    it("lets the guardian pause and unpause, emitting Paused and Unpaused", async () => {
      const { registry, guardian } = await networkHelpers.loadFixture(suiteFixture);
      await expect(registry.connect(guardian).pause()).to.emit(registry, "Paused").withArgs(guardian.address);
      expect(await registry.paused()).to.equal(true);
      await expect(registry.connect(guardian).unpause()).to.emit(registry, "Unpaused").withArgs(guardian.address);
      expect(await registry.paused()).to.equal(false);
    });

    it("reverts with AccessControlUnauthorizedAccount when a non-guardian pauses or unpauses", async () => {
      const { registry, guardian, admin, deviceManager } = await networkHelpers.loadFixture(suiteFixture);
      const guardianRole = await registry.GUARDIAN_ROLE();
      for (const caller of [admin, deviceManager]) {
        await expect(registry.connect(caller).pause())
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, guardianRole);
      }
      await registry.connect(guardian).pause();
      await expect(registry.connect(admin).unpause())
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, guardianRole);
    });

    it("reverts with EnforcedPause when paused twice and ExpectedPause when unpaused while running", async () => {
      const { registry, guardian } = await networkHelpers.loadFixture(suiteFixture);
      await expect(registry.connect(guardian).unpause()).to.be.revertedWithCustomError(registry, "ExpectedPause");
      await registry.connect(guardian).pause();
      await expect(registry.connect(guardian).pause()).to.be.revertedWithCustomError(registry, "EnforcedPause");
    });

    it("blocks registration, rotation, revocation and transfer with EnforcedPause", async () => {
      const { registry, guardian, deviceManager, deviceOwner, owner } =
        await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(guardian).pause();
      const { qx, qy } = randomP256Key();
      const manager = registry.connect(deviceManager);
      const calls = [
        () => manager.registerSecp256k1Device(0x3000n, deviceOwner.address, INTERVAL_SECONDS, randomSigner()),
        () => manager.registerP256Device(0x3001n, deviceOwner.address, INTERVAL_SECONDS, qx, qy),
        () => manager.rotateSecp256k1Key(DEVICE_ID, randomSigner()),
        () => manager.rotateP256Key(DEVICE_ID, qx, qy),
        () => manager.revokeDevice(DEVICE_ID),
        () => manager.transferDeviceOwnership(DEVICE_ID, owner.address),
      ];
      for (const call of calls) {
        await expect(call()).to.be.revertedWithCustomError(registry, "EnforcedPause");
      }
    });

    it("keeps the views readable while paused and lets changes through again after unpause", async () => {
      const { registry, guardian, deviceOwner, signer } = await networkHelpers.loadFixture(registeredFixture);
      await registry.connect(guardian).pause();
      expect(await registry.isActive(DEVICE_ID)).to.equal(true);
      expect((await registry.verificationKey(DEVICE_ID)).signer).to.equal(signer);
      expect((await registry.device(DEVICE_ID)).owner).to.equal(deviceOwner.address);
      await registry.connect(guardian).unpause();
      await expect(registry.connect(deviceOwner).revokeDevice(DEVICE_ID)).to.emit(registry, "DeviceRevoked");
    });
  });
});
