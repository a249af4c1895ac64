/**
 * Compiler warnings are errors: rebuilds every Solidity file (contracts and Solidity tests) from scratch and
 * fails if solc printed any warning. Hardhat 3 has no setting for this (solc warnings go to stderr and the
 * build still succeeds), so `npm run lint` runs this script.
 */
import hre from "hardhat";
import { FileBuildResultType } from "hardhat/types/solidity";

const rootFiles = await hre.solidity.getRootFilePaths();
const result = await hre.solidity.build(rootFiles, { force: true, quiet: true });
if (!hre.solidity.isSuccessfulBuildResult(result)) {
  console.error("compilation failed: run `npx hardhat build` to see the errors");
  process.exit(1);
}
const warnings = new Set<string>();
for (const fileResult of result.values()) {
  if (fileResult.type !== FileBuildResultType.BUILD_SUCCESS) continue;
  for (const warning of fileResult.warnings) warnings.add(warning.formattedMessage ?? warning.message);
}
for (const warning of warnings) console.error(warning);
if (warnings.size > 0) {
  console.error(`${warnings.size} compiler warning(s): fix them, compiler warnings are errors in this project`);
  process.exit(1);
}
console.log(`no compiler warnings in ${rootFiles.length} root files`);
