#!/usr/bin/env node
// The `coldchain-oracle` bin. Node >= 22.18 runs this file itself (type stripping); tsx then loads the
// oracle's TypeScript modules, whose imports name `.js` files as the TypeScript ESM convention wants.
import { register } from "tsx/esm/api";

register();
await import("./main.js");
