/**
 * Every operator command, in the order `--help` lists them. Add a command by importing it here.
 */
import type { Command } from "../command.js";

import { custodyCommands } from "./custody.js";
import { deviceCommands } from "./device.js";
import { domainCommand } from "./domain.js";
import { exportEpcisCommand } from "./export-epcis.js";
import { profileCommands } from "./profile.js";
import { reportCommand } from "./report.js";
import { roleCommands } from "./role.js";
import { shipmentCommands } from "./shipment.js";
import { showCommand } from "./show.js";

export const COMMANDS: readonly Command[] = [
  ...deviceCommands,
  ...profileCommands,
  ...shipmentCommands,
  ...custodyCommands,
  ...roleCommands,
  showCommand,
  reportCommand,
  exportEpcisCommand,
  domainCommand,
];
