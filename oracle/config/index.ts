/**
 * Oracle configuration, in three parts: the schema and its validation (./schema.ts), the config file and
 * `ORACLE__…` environment overrides (./env.ts), and the secrets, from the environment or a Hardhat keystore, never
 * from the file (./secrets.ts, ./keystore.ts).
 */
export * from "./schema.js";
export * from "./env.js";
export * from "./secrets.js";
