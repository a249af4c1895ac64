/**
 * The address books of the public networks we deploy to, shipped inside the `@coldchain/sdk` package so a dApp
 * can load them by name (`loadDeployment("sepolia")`) without serving any file.
 *
 * In the repository this module is empty: Node code reads `deployments/` through `@coldchain/sdk/node`. The
 * package build (`npm run build:sdk`, scripts/build-sdk.ts) replaces its compiled form with the public networks'
 * `deployments/<network>.json` (every file except local and development chains), validated first.
 */

/** Network name → the parsed `deployments/<network>.json` (validated by `parseDeployment` on load). */
export const BUNDLED_DEPLOYMENTS: Readonly<Record<string, unknown>> = Object.freeze({});
