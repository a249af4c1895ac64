/**
 * `npm start`: the cold chain in one run, on the in-process chain (hardfork osaka).
 *
 * Deploys the suite, registers a secp256k1 and a P-256 logger, creates a 2–8 °C vaccine shipment, hands it
 * shipper → carrier → hub → receiver, and relays the loggers' signed readings in batches (some arrive after
 * the handover they precede). The carrier lets the load warm up for 70 minutes. Everything printed at the end
 * is read back from the chain.
 */
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { network } from "hardhat";

import type { ColdChainDomain, DevicePrivateKey, SignedItem } from "../sdk/protocol/index.js";
import { encodeBatch, signReading, signWindow } from "../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../test/support/deploy.js";

const INTERVAL = 300;
const BREACHES = [
  "None",
  "AbsoluteLimit",
  "SingleExcursion",
  "CumulativeExcursion",
  "Freeze",
  "MissingData",
  "DeviceFault",
  "MktExceeded",
];
const STATUS = ["None", "Created", "InTransit", "Delivered", "Released", "Rejected", "Cancelled"];

const connection = await network.create();
const { networkHelpers } = connection;
const s = await deploySuite(connection);
const names = new Map<string, string>([
  [s.shipper.address, "shipper"],
  [s.carrier.address, "carrier"],
  [s.hub.address, "hub"],
  [s.receiver.address, "receiver"],
]);
const domain: ColdChainDomain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
console.log(`ColdChain ${domain.verifyingContract} on chain ${domain.chainId} (in-process, osaka)`);

await (await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE)).wait();
const logger: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
const secureElement: DevicePrivateKey = { keyType: "p256", privateKey: Wallet.createRandom().privateKey };
await registerDevice(s, 1n, logger, INTERVAL);
await registerDevice(s, 2n, secureElement, INTERVAL);
await createShipment(s, [1n, 2n], 1n, keccak256(toUtf8Bytes("SSCC 003456789012345678")));
const shipper = s.coldChain.connect(s.shipper);
await (await shipper.startShipment(1n)).wait();
const start = await networkHelpers.time.latest();
console.log("shipment 1 created and started: 2–8 °C vaccines, loggers 1 (secp256k1) and 2 (P-256)");

// Temperature story, one value per 5-minute slot over 12 hours: 5 °C, the carrier's leg warms up for 70 min.

const temp = (i: number): number => (i >= 40 && i < 54 ? 950 + (i - 40) * 10 : 480 + (i % 6) * 12);
let seq1 = 0;
let seq2 = 0;
let relayed = 0;
async function relay(from: number, to: number): Promise<void> {
  const items: SignedItem[] = [];
  // Logger 1 uploads a window; logger 2 signs each reading.
  const samples = [];
  for (let i = from; i < to; i++) samples.push({ tempCentiC: temp(i), flags: 0 });
  items.push(
    signWindow(
      domain,
      {
        deviceId: 1n,
        firstSequence: seq1 + 1,
        firstObservedAt: start + 600 + from * INTERVAL,
        intervalSeconds: INTERVAL,
        samples,
      },
      logger,
    ),
  );
  seq1 += to - from;
  for (let i = from; i < to; i++) {
    items.push(
      signReading(
        domain,
        { deviceId: 2n, sequence: ++seq2, observedAt: start + 600 + i * INTERVAL, tempCentiC: temp(i) + 15, flags: 0 },
        secureElement,
      ),
    );
  }
  const receipt = await (await s.coldChain.connect(s.relayer).submitReadings(encodeBatch(items))).wait();
  relayed += (to - from) * 2;
  console.log(`relayed readings ${from}..${to - 1} of both loggers in one batch: ${receipt!.gasUsed} gas`);
}
async function handover(from: typeof s.shipper, to: typeof s.shipper): Promise<void> {
  const deadline = (await networkHelpers.time.latest()) + 3600;
  await (await s.coldChain.connect(from).offerCustody(1n, to.address, deadline)).wait();
  await (await s.coldChain.connect(to).acceptCustody(1n)).wait();
  console.log(`custody: ${names.get(from.address)} -> ${names.get(to.address)}`);
}

await networkHelpers.time.increaseTo(start + 600 + 30 * INTERVAL);
await handover(s.shipper, s.carrier);
await networkHelpers.time.increaseTo(start + 600 + 70 * INTERVAL);
await handover(s.carrier, s.hub);
await relay(0, 70); // uploaded late: 30 readings from the shipper's time, 40 from the carrier's
await networkHelpers.time.increaseTo(start + 600 + 110 * INTERVAL);
await handover(s.hub, s.receiver);
await relay(70, 110);
await networkHelpers.time.increase(INTERVAL);

// Report, read back from the chain.
const info = await s.coldChain.shipment(1n);
const c = await s.coldChain.condition(1n);
const [known, mkt] = await s.lens.meanKineticTemperature(1n);
console.log("\n== shipment 1");
console.log(`status          ${STATUS[Number(info.status)]}`);
console.log(`readings        ${c.readingCount} on-chain (${relayed} relayed)`);
console.log(`min / max       ${Number(c.minCentiC) / 100} °C / ${Number(c.maxCentiC) / 100} °C`);
console.log(`MKT             ${known ? `${Number(mkt) / 100} °C` : "n/a"}`);
console.log(`excursion       ${Number(c.cumulativeExcursionSeconds) / 60} min (logger-minutes, both loggers)`);
console.log(`first breach    ${BREACHES[Number(c.firstBreach)]}`);
console.log("custody and liability:");
for (const p of await s.coldChain.custodyHistory(1n)) {
  const breaches = BREACHES.filter((_, i) => (Number(p.breachFlags) >> i) & 1);
  console.log(
    `  ${names.get(p.custodian)?.padEnd(9)} since ${new Date(Number(p.since) * 1000).toISOString()}  excursion ${Number(p.excursionSeconds) / 60} min  breaches: ${breaches.join(", ") || "none"}`,
  );
}
const verdict = c.breachFlags === 0n;
await (
  verdict
    ? s.coldChain.connect(s.receiver).release(1n)
    : s.coldChain.connect(s.receiver).reject(1n, keccak256(toUtf8Bytes("TEMPERATURE_EXCURSION")))
).then((tx) => tx.wait());
console.log(`receiver's decision: ${STATUS[Number((await s.coldChain.shipment(1n)).status)]}`);
