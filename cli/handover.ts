/**
 * The signed-handover text the CLI prints (`custody sign-handover`) and reads (`custody handover --signed`): one
 * format for the CLI and the dashboard, defined in the protocol module (sdk/protocol/handover.ts, docs/protocol.md
 * §2.6). Re-exported here for the CLI's commands.
 */
export {
  HANDOVER_PREFIX,
  HandoverError,
  assertHandoverDomain,
  assertHandoverSigner,
  decodeHandover,
  encodeHandover,
  handoverSigner,
} from "../sdk/protocol/handover.js";
export type { HandoverErrorCode, SignedHandover } from "../sdk/protocol/handover.js";
