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
/**
 * Test contracts that deploy the whole suite with `new` exceed the contract size limit by design; Hardhat itself
 * hides that warning for test files, and so does this check. Every other warning counts, in tests too.
 */
function isTestSizeWarning(message: string, formatted: string | undefined): boolean {
  // The formatted message names the source as "--> ./test/Foo.t.sol:12:1".
  const file = /-->\s+(\S+?):\d+/.exec(formatted ?? "")?.[1];
  return /Contract (initcode|code) size/.test(message) && file !== undefined && /(^|\/)test\//.test(file);
}

const warnings = new Set<string>();
for (const fileResult of result.values()) {
  if (fileResult.type !== FileBuildResultType.BUILD_SUCCESS) continue;
  for (const warning of fileResult.warnings) {
    if (isTestSizeWarning(warning.message, warning.formattedMessage)) continue;
    warnings.add(warning.formattedMessage ?? warning.message);
  }
}
for (const warning of warnings) console.error(warning);
if (warnings.size > 0) {
  console.error(`${warnings.size} compiler warning(s): fix them, compiler warnings are errors in this project`);
  process.exit(1);
}
console.log(`no compiler warnings in ${rootFiles.length} root files`);
