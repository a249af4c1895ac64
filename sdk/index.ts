/**
 * The ColdChain SDK for dApps (browser entry; no Node built-ins). Import as `coldchain/sdk`.
 *
 * - the address book: {@link parseDeployment}, {@link deploymentStartBlock} (Node file access: `coldchain/sdk/node`)
 * - typed contracts: {@link connectSuite} and the TypeChain types and factories (run `npx hardhat build` first)
 * - state and history: {@link readShipment}, {@link shipmentHistory}, {@link temperatureTimeline}
 * - paginated log queries: {@link getLogsPaged}
 * - GS1 EPCIS 2.0 export: {@link toEpcisDocument}
 * - the protocol (EIP-712 signing, batch codec, event decoders, MKT): everything of `coldchain/sdk/protocol`
 *
 * See docs/integration.md.
 */
export * from "./contracts.js";
export * from "./deployment.js";
export * from "./epcis.js";
export * from "./history.js";
export * from "./logs.js";
export * from "./names.js";
export * from "./protocol/index.js";
export * from "./state.js";
