/**
 * The operator CLI as a user runs it: a real `hardhat node`, `npm run deploy` into a temporary
 * COLDCHAIN_DEPLOYMENTS_DIR, then every command as a child process (`node --import tsx cli/main.ts …`), each
 * result checked on chain. Bad input — wrong network, missing deployment file, malformed profile, wrong signer
 * for a role, no key — must give one line with the fix, a non-zero exit code, and send nothing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import {
  HDNodeWallet,
  JsonRpcProvider,
  Wallet,
  ZeroAddress,
  decodeBytes32String,
  id,
  keccak256,
  toUtf8Bytes,
} from "ethers";

import { decodeHandover, encodeHandover, handoverSigner } from "../../cli/handover.js";
import { PROFILE_PRESETS } from "../../cli/profiles.js";
import { parseDeployment } from "../../sdk/deployment.js";
import { connectSuite, readShipment, shipmentHistory, toEpcisDocument } from "../../sdk/index.js";
import type { Deployment } from "../../sdk/deployment.js";
import { p256PublicKey } from "../../sdk/protocol/index.js";
import { ColdChain__factory, DeviceRegistry__factory } from "../../types/ethers-contracts/index.js";
import type { ColdChain, DeviceRegistry } from "../../types/ethers-contracts/index.js";
import { runScript, startHardhatNode } from "../support/node.js";
import type { HardhatNode, ScriptResult } from "../support/node.js";

const MNEMONIC = "test test test test test test test test test test test junk";
const account = (index: number): Wallet =>
  new Wallet(HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`).privateKey);

// Parties (hardhat node dev accounts): 0 deployer with every role, 1 carrier, 2 receiver, 3 device owner,
// 4 QA-less shipper-to-be, 5 stranger.
/** Unix seconds as the CLI prints them (ISO 8601, whole seconds). */
const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");

const ADMIN = 0;
const CARRIER = 1;
const RECEIVER = 2;
const DEVICE_OWNER = 3;
const STRANGER = 5;

describe("npm run cli (hardhat node)", function () {
  this.timeout(120_000);
  let node: HardhatNode;
  let dir: string;
  let provider: JsonRpcProvider;
  let env: NodeJS.ProcessEnv;
  let deployment: Deployment;
  let coldChain: ColdChain;
  let registry: DeviceRegistry;

  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<ScriptResult> =>
    runScript("cli/main.ts", args, { ...env, ...extraEnv });
  /** Runs a command on localhost as dev account `who`; expects success. */
  const run = async (who: number, ...args: string[]): Promise<ScriptResult> => {
    const result = await cli([...args, "--network", "localhost", "--account", String(who)]);
    expect(result.code, `${args.join(" ")}\n${result.stdout}\n${result.stderr}`).to.equal(0);
    return result;
  };
  const runJson = async (who: number, ...args: string[]): Promise<Record<string, unknown>> =>
    JSON.parse((await run(who, ...args, "--json")).stdout) as Record<string, unknown>;
  /** Expects a failure: exit code, exactly one stderr line matching `pattern`, and no new block. */
  const fails = async (result: Promise<ScriptResult>, code: number, pattern: RegExp): Promise<string> => {
    const blockBefore = await provider.getBlockNumber();
    const r = await result;
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(code);
    const lines = r.stderr.trim().split("\n");
    expect(lines, r.stderr).to.have.length(1);
    expect(lines[0]).to.match(pattern);
    expect(await provider.getBlockNumber(), "nothing may be sent").to.equal(blockBefore);
    return lines[0] ?? "";
  };

  before(async () => {
    node = await startHardhatNode();
    dir = mkdtempSync(join(tmpdir(), "coldchain-cli-"));
    // COLDCHAIN_RPC_URL spares each command loading hardhat.config.ts; the first test goes through the config.
    env = {
      COLDCHAIN_LOCALHOST_URL: node.url,
      COLDCHAIN_RPC_URL: node.url,
      COLDCHAIN_DEPLOYMENTS_DIR: dir,
      COLDCHAIN_PRIVATE_KEY: "",
    };
    const deployed = await runScript("scripts/deploy.ts", ["--network", "localhost"], env);
    expect(deployed.code, deployed.stderr).to.equal(0);
    deployment = parseDeployment(JSON.parse(readFileSync(join(dir, "localhost.json"), "utf8")));
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    coldChain = ColdChain__factory.connect(deployment.contracts.ColdChain.address, provider);
    registry = DeviceRegistry__factory.connect(deployment.contracts.DeviceRegistry.address, provider);
  });

  after(async () => {
    provider.destroy();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists the commands and explains each with --help", async () => {
    const overview = await cli(["--help"]);
    expect(overview.code).to.equal(0);
    for (const name of [
      "device register",
      "device approve-shipper",
      "profile create",
      "shipment create",
      "custody sign-handover",
    ]) {
      expect(overview.stdout).to.include(name);
    }
    const help = await cli(["device", "register", "--help"]);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/--id <deviceId> --owner <address> --interval <seconds>/);
    expect(help.stdout).to.include("COLDCHAIN_PRIVATE_KEY");
    const approveHelp = await cli(["device", "approve-shipper", "--help"]);
    expect(approveHelp.code).to.equal(0);
    expect(approveHelp.stdout).to.match(/device approve-shipper --network <name> --shipper <address> \[--revoke\]/);
    expect(approveHelp.stdout).to.include("owner's key");
    expect((await cli(["shipment", "create", "--help"])).stdout).to.include("device approve-shipper");
    await fails(
      cli(["device", "frobnicate"]),
      2,
      /^error: unknown command "device frobnicate"; try one of: device register/,
    );
  });

  it("registers, rotates and revokes devices (secp256k1 and P-256)", async () => {
    const owner = account(DEVICE_OWNER).address;
    // Through hardhat.config.ts: localhost's URL (COLDCHAIN_LOCALHOST_URL), no COLDCHAIN_RPC_URL.
    const registered = await cli(
      [
        ...["device", "register", "--id", "1", "--owner", owner, "--interval", "60"],
        ...["--signer", account(10).address, "--network", "localhost", "--account", String(ADMIN)],
      ],
      { COLDCHAIN_RPC_URL: "" },
    );
    expect(registered.code, registered.stderr).to.equal(0);
    let info = await registry.device(1);
    expect(info.owner).to.equal(owner);
    expect(info.signer).to.equal(account(10).address);
    expect(info.intervalSeconds).to.equal(60n);

    const pub = p256PublicKey("0x" + "11".repeat(32));
    const uncompressed = `0x04${pub.x.slice(2)}${pub.y.slice(2)}`;
    const p256 = await runJson(
      ADMIN,
      "device",
      "register",
      "--id",
      "2",
      "--owner",
      owner,
      "--interval",
      "300",
      "--p256-public-key",
      uncompressed,
    );
    expect(p256.keyType).to.equal("p256");
    info = await registry.device(2);
    expect(info.qx).to.equal(pub.x);
    expect(info.qy).to.equal(pub.y);

    // The owner rotates its own device; the new key verifies readings observed from the rotation's block time on.
    const rotated = await run(DEVICE_OWNER, "device", "rotate", "--id", "1", "--signer", account(11).address);
    expect((await registry.device(1)).signer).to.equal(account(11).address);
    const validFrom = Number((await registry.verificationKey(1)).keyValidFrom);
    expect(validFrom).to.be.greaterThan(0);
    expect(rotated.stdout).to.include(
      `the new key of device 1 verifies readings observed from ${iso(validFrom)} (${validFrom}) on; earlier ` +
        "readings still verify under the previous key",
    );
    // A stranger may not.
    await fails(
      cli([
        "device",
        "rotate",
        "--id",
        "1",
        "--signer",
        account(12).address,
        "--network",
        "localhost",
        "--account",
        String(STRANGER),
      ]),
      1,
      /is neither the owner of device 1 .* nor holds DEVICE_MANAGER_ROLE; use the owner's key/,
    );

    // --from (an earlier distrust time) is for device managers only; the owner revokes from now.
    const now = (await provider.getBlock("latest"))?.timestamp ?? 0;
    const earlier = now - 600;
    await fails(
      cli(["device", "revoke", "--id", "2", "--from", iso(earlier), "--network", "localhost", "--account", "3"]),
      1,
      /^error: --from \(revokeDeviceFrom\) is for device managers only and 0x[0-9a-fA-F]{40} lacks DEVICE_MANAGER_ROLE/,
    );
    await fails(
      cli(["device", "revoke", "--id", "2", "--from", String(now + 3600), "--network", "localhost", "--account", "0"]),
      2,
      /is after the chain's latest block time .*not from the future$/,
    );
    const revoked = await runJson(ADMIN, "device", "revoke", "--id", "2", "--from", iso(earlier));
    expect(revoked).to.include({ revoked: true, distrustedFrom: earlier });
    expect(Number((await registry.verificationKey(2)).revokedFrom)).to.equal(earlier);
    expect(await registry.isActive(2)).to.equal(false);
    expect(await registry.isActive(1)).to.equal(true);
  });

  it("creates profiles from presets and from YAML files", async () => {
    const yamlPath = join(dir, "chilled.yaml");
    writeFileSync(yamlPath, "extends: crt-15-25\nmaxCentiC: 2400\nmktLimitCentiC: 2400\n");
    const created = await runJson(ADMIN, "profile", "create", "--profile", yamlPath);
    const profileId = BigInt(created.profileId as string);
    const onChain = await coldChain.profile(profileId);
    expect(onChain.maxCentiC).to.equal(2400n);
    expect(onChain.minCentiC).to.equal(BigInt(PROFILE_PRESETS["crt-15-25"].minCentiC));
    expect(onChain.mktLimitCentiC).to.equal(2400n);

    // Temperatures in degrees: in a file, and as options over a preset; the dry run prints °C.
    const degreesPath = join(dir, "degrees.yaml");
    writeFileSync(degreesPath, 'extends: vaccine-2-8\nminC: 3\nmaxC: "7 °C"\nfreezeC: -0.5\n');
    const fromDegrees = await runJson(ADMIN, "profile", "create", "--profile", degreesPath);
    const degreesOnChain = await coldChain.profile(BigInt(fromDegrees.profileId as string));
    expect([degreesOnChain.minCentiC, degreesOnChain.maxCentiC, degreesOnChain.freezeCentiC]).to.deep.equal([
      300n,
      700n,
      -50n,
    ]);
    const blockBefore = await provider.getBlockNumber();
    const dry = await run(
      ADMIN,
      "profile",
      "create",
      "--profile",
      "vaccine-2-8",
      "--min",
      "2.5",
      "--max",
      "7.5°C",
      "--dry-run",
    );
    expect(await provider.getBlockNumber()).to.equal(blockBefore);
    expect(dry.stdout).to.include("  Allowed range: 2.5 °C to 7.5 °C\n");
    expect(dry.stdout).to.include("  Freeze: at or below \u22120.5 °C for 1 h or more is a breach\n");
    expect(dry.stdout).to.match(/^minCentiC: 250 \(2\.5 °C\)$/m);
    expect(dry.stdout).to.match(/^freezeCentiC: -50 \(\u22120\.5 °C\)$/m);

    const preset = await runJson(ADMIN, "profile", "create", "--profile", "who-10-day-type1");
    expect((await coldChain.profile(BigInt(preset.profileId as string))).maxCumulativeExcursionSeconds).to.equal(
      36000n,
    );
  });

  it("binds another owner's devices only once the owner approves the shipper (device approve-shipper)", async () => {
    const owner = account(DEVICE_OWNER).address;
    const shipper = account(ADMIN).address;
    // A logger of the device owner's that no other test binds.
    await run(ADMIN, "device", "register", "--id", "4", "--owner", owner, "--interval", "60", "--signer", owner);
    const createWith = (device: string, ...extra: string[]) =>
      cli([
        ...["shipment", "create", "--profile", "1", "--receiver", account(RECEIVER).address, "--devices", device],
        ...["--network", "localhost", "--account", String(ADMIN), ...extra],
      ]);
    const notApproved = (device: number) =>
      new RegExp(
        `^error: device ${device} is owned by ${owner}, who has not approved shipper ${shipper} to bind its ` +
          `devices; have the owner run \`npm run cli -- device approve-shipper --network localhost --shipper ` +
          `${shipper}\`; nothing was sent$`,
      );
    // Refused before anything is sent (even a dry run), naming the device, the shipper, the owner and the fix.
    expect(await registry.mayBind(4, shipper)).to.equal(false);
    await fails(createWith("4"), 1, notApproved(4));
    await fails(createWith("4", "--dry-run"), 1, notApproved(4));
    // Only the owner can consent for its devices: the shipper approving itself is pointless and refused.
    await fails(
      cli([
        ...["device", "approve-shipper", "--shipper", shipper, "--network", "localhost", "--account", String(ADMIN)],
      ]),
      2,
      /^error: --shipper is the signer itself: an owner may always bind its own devices; nothing was sent$/,
    );

    // The owner approves (a dry run first: nothing sent).
    const blockBefore = await provider.getBlockNumber();
    await run(DEVICE_OWNER, "device", "approve-shipper", "--shipper", shipper, "--dry-run");
    expect(await provider.getBlockNumber()).to.equal(blockBefore);
    expect(await registry.mayBind(4, shipper)).to.equal(false);
    const approval = await run(DEVICE_OWNER, "device", "approve-shipper", "--shipper", shipper);
    expect(approval.stdout).to.include(`owner ${owner} now allows shipper ${shipper} to bind its devices to shipments`);
    expect(approval.stdout).to.match(/^approved: true$/m);
    expect(await registry.mayBind(4, shipper)).to.equal(true);
    expect(await registry.mayBind(1, shipper)).to.equal(true); // every device the owner holds
    const events = await registry.queryFilter(registry.filters.ShipperApprovalSet(owner, shipper));
    expect(events.map((e) => e.args.approved)).to.deep.equal([true]);

    const created = await runJson(
      ADMIN,
      ...["shipment", "create", "--profile", "1", "--receiver", account(RECEIVER).address, "--devices", "4"],
    );
    const shipmentId = BigInt(created.shipmentId as string);
    expect((await coldChain.shipment(shipmentId)).deviceIds).to.deep.equal([4n]);

    // --revoke stops new bindings; the shipment already created keeps its device.
    const revoked = await runJson(DEVICE_OWNER, "device", "approve-shipper", "--shipper", shipper, "--revoke");
    expect(revoked).to.include({ owner, shipper, approved: false });
    expect(await registry.mayBind(1, shipper)).to.equal(false);
    expect((await coldChain.shipment(shipmentId)).deviceIds).to.deep.equal([4n]);
    await fails(createWith("1"), 1, notApproved(1));

    // Approved again: the later tests bind device 1 as the admin.
    await run(DEVICE_OWNER, "device", "approve-shipper", "--shipper", shipper);
    expect(await registry.mayBind(1, shipper)).to.equal(true);
  });

  it("runs a shipment through custody offer/accept, the signed handover, and release", async () => {
    const receiver = account(RECEIVER).address;
    const carrier = account(CARRIER).address;
    // Dry run first: simulated, nothing sent.
    const dry = await cli([
      "shipment",
      "create",
      "--profile",
      "vaccine-2-8",
      "--receiver",
      receiver,
      "--devices",
      "1",
      "--network",
      "localhost",
      "--account",
      String(ADMIN),
      "--dry-run",
      "--json",
    ]);
    expect(dry.code, dry.stderr).to.equal(0);
    expect(JSON.parse(dry.stdout)).to.include({ dryRun: true });
    expect(dry.stderr, "a short reference is stored as text, no warning").to.not.match(/--ref/);
    // A reference longer than a bytes32 holds is hashed, and the CLI says so (never silently).
    const longRef = "urn:epc:id:sscc:0614141.1234567890";
    const hashed = await cli([
      ...["shipment", "create", "--profile", "vaccine-2-8", "--receiver", receiver, "--devices", "1"],
      ...["--ref", longRef, "--network", "localhost", "--account", String(ADMIN), "--dry-run"],
    ]);
    expect(hashed.code, hashed.stderr).to.equal(0);
    expect(hashed.stderr).to.include(
      `--ref is 34 bytes, more than the 31 a bytes32 holds as text: stored as its keccak256 ${keccak256(toUtf8Bytes(longRef))}`,
    );

    const created = await runJson(
      ADMIN,
      "shipment",
      "create",
      "--profile",
      "vaccine-2-8",
      "--receiver",
      receiver,
      "--devices",
      "1",
      "--ref",
      "SSCC-376123450000000017",
      "--planned-start",
      "2026-12-01T08:00:00Z",
    );
    const shipmentId = BigInt(created.shipmentId as string);
    let info = await coldChain.shipment(shipmentId);
    expect(info.status).to.equal(1n); // Created
    expect(info.receiver).to.equal(receiver);
    expect(info.deviceIds).to.deep.equal([1n]);
    expect(decodeBytes32String(info.externalRef)).to.equal("SSCC-376123450000000017");
    expect(info.plannedStartAt).to.equal(BigInt(Date.parse("2026-12-01T08:00:00Z") / 1000));
    expect(info.profileId).to.equal(BigInt(created.profileId as string));
    expect(created.profileCreated).to.equal(true);

    const blockBefore = await provider.getBlockNumber();
    await run(ADMIN, "shipment", "start", "--id", String(shipmentId), "--dry-run");
    expect(await provider.getBlockNumber()).to.equal(blockBefore);
    expect((await coldChain.shipment(shipmentId)).status).to.equal(1n);

    await run(ADMIN, "shipment", "start", "--id", String(shipmentId));
    expect((await coldChain.shipment(shipmentId)).status).to.equal(2n); // InTransit

    await run(ADMIN, "custody", "offer", "--id", String(shipmentId), "--to", carrier);
    expect((await coldChain.custodyOffer(shipmentId)).to).to.equal(carrier);
    // Key from the environment instead of --account.
    const accepted = await cli(["custody", "accept", "--id", String(shipmentId), "--network", "localhost"], {
      COLDCHAIN_PRIVATE_KEY: account(CARRIER).privateKey,
    });
    expect(accepted.code, accepted.stderr).to.equal(0);
    expect((await coldChain.shipment(shipmentId)).custodian).to.equal(carrier);

    // The receiver signs the handover off-line; the carrier submits it in one transaction.
    const signed = (await run(RECEIVER, "custody", "sign-handover", "--id", String(shipmentId))).stdout.trim();
    expect(signed).to.match(/^coldchain:handover:v1:[A-Za-z0-9_-]{174}$/);
    const decoded = decodeHandover(signed);
    expect(decoded.acceptance.custodian).to.equal(receiver);
    expect(handoverSigner(decoded)).to.equal(receiver);
    // Only the current custodian can submit it.
    await fails(
      cli(["custody", "handover", "--signed", signed, "--network", "localhost", "--account", String(STRANGER)]),
      1,
      /is not the custodian of shipment \d+ .*use the custodian's key; nothing was sent$/,
    );
    // A tampered string is refused before anything is sent.
    const tampered = encodeHandover({
      ...decoded,
      acceptance: { ...decoded.acceptance, deadline: decoded.acceptance.deadline + 1n },
    });
    await fails(
      cli(["custody", "handover", "--signed", tampered, "--network", "localhost", "--account", String(CARRIER)]),
      2,
      /the handover signature does not match its custodian/,
    );
    await run(CARRIER, "custody", "handover", "--signed", signed);
    info = await coldChain.shipment(shipmentId);
    expect(info.status).to.equal(3n); // Delivered
    expect(info.custodian).to.equal(receiver);
    const history = await coldChain.custodyHistory(shipmentId);
    expect(history.map((p) => p.custodian)).to.deep.equal([account(ADMIN).address, carrier, receiver]);

    await fails(
      cli(["shipment", "release", "--id", String(shipmentId), "--network", "localhost", "--account", String(STRANGER)]),
      1,
      /is neither the receiver of shipment \d+ .* nor holds QA_ROLE/,
    );
    await run(RECEIVER, "shipment", "release", "--id", String(shipmentId), "--note", "released after QA review");
    expect((await coldChain.shipment(shipmentId)).status).to.equal(4n); // Released

    // What the CLI did, read back through the SDK as an auditor would.
    const suite = connectSuite(deployment, provider);
    const state = await readShipment(suite, shipmentId);
    expect(state.status).to.equal("Released");
    expect(state.receiver).to.equal(receiver);
    expect(state.custodian).to.equal(receiver);
    expect(state.custody.map((p) => p.custodian)).to.deep.equal([account(ADMIN).address, carrier, receiver]);
    expect(state.condition.breaches).to.deep.equal([]);
    expect(state.pendingOffer).to.equal(undefined);
    const sdkHistory = await shipmentHistory(suite, shipmentId);
    expect(sdkHistory.lifecycle.map((e) => e.kind)).to.deep.equal([
      "created",
      "started",
      "custodyOffered",
      "delivered",
      "released",
    ]);
    expect(sdkHistory.lifecycle.at(-1)?.note).to.equal("released after QA review");
    expect(sdkHistory.custody.map((h) => [h.from, h.to])).to.deep.equal([
      [ZeroAddress, account(ADMIN).address], // creation: the shipper takes custody
      [account(ADMIN).address, carrier],
      [carrier, receiver],
    ]);
    expect(sdkHistory.readings).to.deep.equal([]); // no device reported in this flow
    expect(sdkHistory.breaches).to.deep.equal([]);
    expect(sdkHistory.excursions).to.deep.equal([]);
    const epcis = toEpcisDocument(sdkHistory, state);
    const steps = epcis.epcisBody.eventList.map((e) => e.bizStep);
    expect(steps[0]).to.equal("commissioning");
    expect(steps).to.include.members(["shipping", "receiving", "inspecting"]);
    expect(epcis.epcisBody.eventList.at(-1)).to.include({ bizStep: "inspecting", disposition: "conformant" });
    expect(epcis.epcisBody.eventList.flatMap((e) => e.sensorElementList ?? [])).to.deep.equal([]);

    // The next shipment with the same preset (device 1 free again) finds that profile in the ProfileCreated logs.
    const reuse = await runJson(
      ADMIN,
      ...["shipment", "create", "--profile", "vaccine-2-8", "--receiver", receiver, "--devices", "1", "--dry-run"],
    );
    expect(reuse).to.include({ profileId: created.profileId, dryRun: true });
    expect(reuse.profileCreated).to.equal(undefined);
  });

  it("delivers by offer to the receiver, who accepts and rejects", async () => {
    const receiver = account(RECEIVER).address;
    const created = await runJson(
      ADMIN,
      "shipment",
      "create",
      "--profile",
      "1",
      "--receiver",
      receiver,
      "--devices",
      "1",
    );
    const shipmentId = String(created.shipmentId);
    await run(ADMIN, "shipment", "deliver", "--id", shipmentId);
    await run(RECEIVER, "custody", "accept", "--id", shipmentId);
    expect((await coldChain.shipment(BigInt(shipmentId))).status).to.equal(3n);
    // Only documented reason codes, never a hash of free text; the note is checked before anything is sent.
    await fails(
      cli([
        "shipment",
        "reject",
        "--id",
        shipmentId,
        "--reason",
        "excursion",
        "--network",
        "localhost",
        "--account",
        "2",
      ]),
      2,
      /^error: --reason: unknown reason code "excursion"; use one of TEMPERATURE_BREACH, FREEZE, MISSING_DATA, .*OTHER$/,
    );
    const long = "TEMPERATURE_EXCURSION_ON_THE_SECOND_LEG";
    await fails(
      cli(["shipment", "reject", "--id", shipmentId, "--reason", long, "--network", "localhost", "--account", "2"]),
      2,
      /^error: --reason: "TEMPERATURE_EXCURSION_ON_THE_SECOND_LEG" is 39 bytes; a reason code is at most 31 bytes and is never hashed; .* put free text in --note$/,
    );
    await fails(
      cli([
        ...["shipment", "reject", "--id", shipmentId, "--reason", "DAMAGED_PACKAGING", "--note", "x".repeat(281)],
        ...["--network", "localhost", "--account", "2"],
      ]),
      2,
      /^error: --note: the note is 281 bytes of UTF-8; at most 280$/,
    );
    const note = "two cartons crushed — photos in deviation report D-17";
    const rejected = await runJson(
      RECEIVER,
      ...["shipment", "reject", "--id", shipmentId, "--reason", "DAMAGED_PACKAGING", "--note", note],
    );
    expect(rejected).to.include({ reason: "DAMAGED_PACKAGING", reasonText: "Packaging damaged", note });
    const info = await coldChain.shipment(BigInt(shipmentId));
    expect(info.status).to.equal(5n); // Rejected
    expect(decodeBytes32String(info.rejectionCode)).to.equal("DAMAGED_PACKAGING");
    const notes = await coldChain.queryFilter(coldChain.filters.DecisionNoted(BigInt(shipmentId)));
    expect(notes.map((e) => [e.args.by, e.args.note])).to.deep.equal([[account(RECEIVER).address, note]]);

    // show: the decision in words, with decider, date, reason and note; the same as data with --json.
    const shown = await run(ADMIN, "show", "--id", shipmentId);
    expect(shown.stdout).to.match(/^Verdict: Rejected — no temperature evaluated yet — reason: Packaging damaged$/m);
    expect(shown.stdout).to.match(
      new RegExp(
        `^Decision: rejected by ${account(RECEIVER).address} at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC ` +
          `\\(block \\d+, tx 0x[0-9a-f]{64}\\) — reason: DAMAGED_PACKAGING — Packaging damaged — note: "${note}"$`,
        "m",
      ),
    );
    const json = (await runJson(ADMIN, "show", "--id", shipmentId)) as {
      state: { status: string; rejectionCode: string; verdict: { stage: string } };
      verdict: { decision: { by: string; note: string; reason: { code: string; documented: boolean } } };
    };
    expect(json.state.status).to.equal("Rejected");
    expect(json.state.rejectionCode).to.equal(info.rejectionCode);
    expect(json.state.verdict.stage).to.equal("rejected");
    expect(json.verdict.decision).to.deep.include({ by: account(RECEIVER).address, note });
    expect(json.verdict.decision.reason).to.deep.include({ code: "DAMAGED_PACKAGING", documented: true });
  });

  it("checks roles before sending and says how to grant them", async () => {
    const stranger = account(STRANGER).address;
    const line = await fails(
      cli([
        "shipment",
        "create",
        "--profile",
        "1",
        "--receiver",
        account(RECEIVER).address,
        "--devices",
        "1",
        "--network",
        "localhost",
        "--account",
        String(STRANGER),
      ]),
      1,
      /lacks SHIPPER_ROLE on ColdChain .*`npm run cli -- role grant --network localhost --contract ColdChain --role SHIPPER_ROLE --to 0x/,
    );
    expect(line).to.include(stranger);
    await fails(
      cli([
        "device",
        "register",
        "--id",
        "9",
        "--owner",
        stranger,
        "--interval",
        "60",
        "--signer",
        stranger,
        "--network",
        "localhost",
        "--account",
        String(STRANGER),
      ]),
      1,
      /lacks DEVICE_MANAGER_ROLE on DeviceRegistry/,
    );
    await run(ADMIN, "role", "grant", "--contract", "ColdChain", "--role", "SHIPPER_ROLE", "--to", stranger);
    expect(await coldChain.hasRole(id("SHIPPER_ROLE"), stranger)).to.equal(true);
    // Device 1's owner lets the new shipper bind it.
    await run(DEVICE_OWNER, "device", "approve-shipper", "--shipper", stranger);
    await run(
      STRANGER,
      "shipment",
      "create",
      "--profile",
      "1",
      "--receiver",
      account(RECEIVER).address,
      "--devices",
      "1",
    );
  });

  it("refuses bad input with one line, a non-zero exit code, and nothing sent", async () => {
    const receiver = account(RECEIVER).address;
    // Independent and read-only: run them side by side (each still checks that no block was added).
    const checks: Promise<string>[] = [];
    // Missing deployment file.
    checks.push(
      fails(
        cli(["shipment", "start", "--id", "1", "--network", "hoodi", "--account", "0"]),
        2,
        /^error: no deployment for network "hoodi" .*run `npm run deploy -- --network hoodi` first$/,
      ),
    );
    // With --json the error is also a JSON document on stdout.
    const jsonError = await cli(["shipment", "start", "--id", "1", "--network", "hoodi", "--json"]);
    expect(jsonError.code).to.equal(2);
    expect(JSON.parse(jsonError.stdout)).to.deep.include({ exitCode: 2 });
    expect((JSON.parse(jsonError.stdout) as { error: string }).error).to.match(/^no deployment for network "hoodi"/);
    // No --network at all.
    checks.push(fails(cli(["shipment", "start", "--id", "1"]), 2, /^error: missing --network <name>/));
    // Wrong network: a file whose chain id is not the node's.
    writeFileSync(join(dir, "sepolia.json"), JSON.stringify({ ...deployment, network: "sepolia", chainId: 11155111 }));
    checks.push(
      fails(
        cli(["shipment", "start", "--id", "1", "--network", "sepolia", "--rpc-url", node.url, "--account", "0"]),
        2,
        /^error: wrong network: .* is chain 31337 but deployments\/sepolia\.json is for chain 11155111/,
      ),
    );
    // A public network without its RPC URL variable.
    checks.push(
      fails(
        cli(["shipment", "start", "--id", "1", "--network", "sepolia"], { SEPOLIA_RPC_URL: "", COLDCHAIN_RPC_URL: "" }),
        2,
        /^error: no RPC URL for sepolia: set SEPOLIA_RPC_URL \(or COLDCHAIN_RPC_URL\), or pass --rpc-url <url>$/,
      ),
    );
    // Malformed profile files.
    const badYaml = join(dir, "bad.yaml");
    writeFileSync(badYaml, "minCentiC: 200\nmaxCentiC: [\n");
    checks.push(
      fails(
        cli(["profile", "create", "--profile", badYaml, "--network", "localhost", "--account", "0"]),
        2,
        /^error: .*bad\.yaml is not valid YAML/,
      ),
    );
    const badRange = join(dir, "range.json");
    writeFileSync(badRange, JSON.stringify({ extends: "vaccine-2-8", minCentiC: 900 }));
    checks.push(
      fails(
        cli(["profile", "create", "--profile", badRange, "--network", "localhost", "--account", "0"]),
        2,
        /range\.json is not a valid profile: minCentiC must be below maxCentiC$/,
      ),
    );
    // Degrees typed where centi-degrees are expected: refused with the values meant.
    const degreesAsCenti = join(dir, "degrees.json");
    writeFileSync(degreesAsCenti, JSON.stringify({ extends: "vaccine-2-8", minCentiC: -2, maxCentiC: 8 }));
    checks.push(
      fails(
        cli(["profile", "create", "--profile", degreesAsCenti, "--network", "localhost", "--account", "0"]),
        2,
        /degrees\.json is not a valid profile: minCentiC: -2, maxCentiC: 8 reads as \u22120\.02 °C to 0\.08 °C \(centi-degrees: hundredths of a °C\); did you mean minCentiC: -200, maxCentiC: 800 \(or, in degrees, minC: -2, maxC: 8\)\?$/,
      ),
    );
    const both = join(dir, "both.yaml");
    writeFileSync(both, "extends: vaccine-2-8\nminC: 2\nminCentiC: 200\n");
    checks.push(
      fails(
        cli(["profile", "create", "--profile", both, "--network", "localhost", "--account", "0"]),
        2,
        /both\.yaml is not a valid profile: give minC \(°C\) or minCentiC \(centi-°C\), not both$/,
      ),
    );
    for (const [option, value, pattern] of [
      ["--max", "46°F", /^error: --max: "46°F": give the temperature in °C$/],
      ["--min", "2.125", /^error: --min: "2\.125": at most two decimals/],
      ["--min", "9", /^error: the profile with the °C options is not valid: minCentiC must be below maxCentiC$/],
    ] as const) {
      checks.push(
        fails(
          cli([
            "profile",
            "create",
            "--profile",
            "vaccine-2-8",
            option,
            value,
            "--network",
            "localhost",
            "--account",
            "0",
          ]),
          2,
          pattern,
        ),
      );
    }
    const unknownKey = join(dir, "typo.json");
    writeFileSync(unknownKey, JSON.stringify({ extends: "vaccine-2-8", maxCelsius: 8 }));
    checks.push(
      fails(
        cli(["profile", "create", "--profile", unknownKey, "--network", "localhost", "--account", "0"]),
        2,
        /typo\.json is not a valid profile: Unrecognized key\(s\) in object: 'maxCelsius'/,
      ),
    );
    checks.push(
      fails(
        cli(["profile", "create", "--profile", "vaccine-3-9", "--network", "localhost", "--account", "0"]),
        2,
        /"vaccine-3-9" is neither a preset \(vaccine-2-8, crt-15-25, frozen-below-minus-15, who-10-day-type1\)/,
      ),
    );
    // No signing key.
    checks.push(
      fails(
        cli(["shipment", "start", "--id", "1", "--network", "localhost"]),
        2,
        /^error: no signing key: set COLDCHAIN_PRIVATE_KEY=0x<64 hex digits> or pass --account <n>$/,
      ),
    );
    // Bad option values and unknown options.
    checks.push(
      fails(
        cli([
          "shipment",
          "create",
          "--profile",
          "1",
          "--receiver",
          "0x1234",
          "--devices",
          "1",
          "--network",
          "localhost",
          "--account",
          "0",
        ]),
        2,
        /^error: --receiver must be a 0x-prefixed 20-byte address, got "0x1234"$/,
      ),
    );
    checks.push(
      fails(
        cli(["shipment", "start", "--id", "1", "--colour", "blue", "--network", "localhost", "--account", "0"]),
        2,
        /^error: Unknown option '--colour'.*see `npm run cli -- shipment start --help`$/,
      ),
    );
    // A revert found by the simulation: decoded, nothing sent.
    checks.push(
      fails(
        cli([
          "shipment",
          "create",
          "--profile",
          "1",
          "--receiver",
          receiver,
          "--devices",
          "2",
          "--network",
          "localhost",
          "--account",
          "0",
        ]),
        1,
        /^error: device 2 is not registered or revoked/,
      ),
    );
    checks.push(
      fails(
        cli(["shipment", "start", "--id", "999", "--network", "localhost", "--account", "0"]),
        1,
        /^error: shipment 999 does not exist on localhost; check --id$/,
      ),
    );
    await Promise.all(checks);
  });

  it("revokes a role", async () => {
    const stranger = account(STRANGER).address;
    if (!(await coldChain.hasRole(id("SHIPPER_ROLE"), stranger))) {
      await run(ADMIN, "role", "grant", "--contract", "ColdChain", "--role", "SHIPPER_ROLE", "--to", stranger);
    }
    const revoked = await runJson(
      ADMIN,
      "role",
      "revoke",
      "--contract",
      "ColdChain",
      "--role",
      "SHIPPER_ROLE",
      "--to",
      stranger,
    );
    expect(revoked).to.include({ contract: "ColdChain", role: "SHIPPER_ROLE", account: stranger, granted: false });
    expect(await coldChain.hasRole(id("SHIPPER_ROLE"), stranger)).to.equal(false);
    // Only an admin may revoke.
    await fails(
      cli([
        ...["role", "revoke", "--contract", "ColdChain", "--role", "QA_ROLE", "--to", account(ADMIN).address],
        ...["--network", "localhost", "--account", String(STRANGER)],
      ]),
      1,
      /lacks DEFAULT_ADMIN_ROLE on ColdChain/,
    );
  });

  it("refuses a malformed handover signature, and an expired offer found by the simulation, sending nothing", async () => {
    // A device of its own (device 1 is bound to an earlier test's unstarted shipment).
    const signerAddress = account(9).address;
    await run(
      ADMIN,
      ...["device", "register", "--id", "77", "--owner", signerAddress, "--interval", "60"],
      "--signer",
      signerAddress,
    );
    await run(9, "device", "approve-shipper", "--shipper", account(ADMIN).address);
    const created = await runJson(
      ADMIN,
      ...["shipment", "create", "--profile", "1", "--receiver", account(RECEIVER).address, "--devices", "77"],
    );
    const shipmentId = String(created.shipmentId);
    await run(ADMIN, "shipment", "start", "--id", shipmentId);

    const signed = (await run(CARRIER, "custody", "sign-handover", "--id", shipmentId)).stdout.trim();
    const garbled = encodeHandover({ ...decodeHandover(signed), signature: `0x${"00".repeat(64)}05` });
    await fails(
      cli(["custody", "handover", "--signed", garbled, "--network", "localhost", "--account", String(ADMIN)]),
      2,
      /^error: the handover signature is malformed .*ask for a new one$/,
    );

    await run(ADMIN, "custody", "offer", "--id", shipmentId, "--to", account(CARRIER).address, "--deadline", "60");
    await provider.send("evm_increaseTime", [3600]);
    await provider.send("evm_mine", []);
    // The CLI's own checks pass (the offer is to the carrier); only the contract knows it expired.
    await fails(
      cli(["custody", "accept", "--id", shipmentId, "--network", "localhost", "--account", String(CARRIER)]),
      1,
      /^error: acceptCustody\(\d+\) would revert: CustodyOfferInvalid\(\d+, 0x[0-9a-fA-F]{40}\); nothing was sent$/,
    );
    expect((await coldChain.shipment(BigInt(shipmentId))).custodian).to.equal(account(ADMIN).address);
  });

  it("refuses a deployment file whose creation transactions are not on the chain (reset chain, same addresses)", async () => {
    // Code is at every address, but the recorded ColdChain transaction created another contract.
    const stale = {
      ...deployment,
      network: "opSepolia",
      contracts: {
        ...deployment.contracts,
        ColdChain: {
          ...deployment.contracts.ColdChain,
          transactionHash: deployment.contracts.MktTable.transactionHash,
        },
      },
    };
    writeFileSync(join(dir, "opSepolia.json"), JSON.stringify(stale));
    await fails(
      cli(["shipment", "start", "--id", "1", "--network", "opSepolia", "--rpc-url", node.url], {
        COLDCHAIN_PRIVATE_KEY: account(ADMIN).privateKey,
      }),
      1,
      /^error: deployments\/opSepolia\.json does not match the chain: no ColdChain created at 0x\w+ by the recorded transaction .*npm run deploy -- --network opSepolia/,
    );
  });
});
