/**
 * Node-only extras of the SDK (`@coldchain/sdk/node`): the browser entry plus address books on disk —
 * `loadDeployment` also reads `deployments/<network>.json` of the current directory, `{ path }` or `{ name, dir }`,
 * and `saveDeployment` writes one.
 */
export * from "../index.js";
export * from "./deployment.js";
// Both entries export a loadDeployment: this one (a superset that also reads files) is the Node entry's.
export { loadDeployment } from "./deployment.js";
