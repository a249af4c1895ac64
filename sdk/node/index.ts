/**
 * Node-only extras of the SDK (`coldchain/sdk/node`): the browser entry plus reading and writing
 * `deployments/<network>.json` from disk.
 */
export * from "../index.js";
export * from "./deployment.js";
