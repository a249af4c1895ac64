/**
 * Branch coverage of Solidity sources, measured with probes.
 *
 * EDR's coverage (`hardhat test --coverage`) tags statements only: it cannot tell which way a condition went, nor
 * whether the right operand of `&&` ran. This module rewrites a copy of each source so that every branch point
 * reports its outcome through the same channel EDR uses for statements (a STATICCALL to the coverage address
 * 0xc0bEc0BE…, input = a 32-byte tag, recorded by EDR into `coverage/data/<runner>/*.json` as tag → hits):
 *
 * - `if (c)`, `c ? a : b`, `while (c)`, `for (…; c; …)`, `do … while (c)`, `require(c, …)`, `assert(c)`: `c` becomes
 *   `__ccB<n>(tagTrue, tagFalse, c)`, which sends `tagTrue` or `tagFalse` and returns `c` unchanged;
 * - `a && b`, `a || b`: the left operand is wrapped the same way (left false / true = short-circuit, the other
 *   outcome = right operand evaluated);
 * - `try … returns { } catch … { }`: each clause's block starts by sending its tag.
 *
 * A branch counts as covered only when its own tag was recorded: nothing is inferred. The rewrite adds no line
 * breaks before the end of the original text (line numbers stay those of the original file) and appends the probe
 * functions after it. Branches inside inline assembly (Yul `if`, `switch`, `for`) are not probed: they are counted
 * and listed as unmeasured, and left out of the percentage. Conditions outside function and modifier bodies
 * (constant or state-variable initialisers) cannot call a function; they are listed as unmeasured too.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

/** The address EDR's coverage library sends statement hits to (see `@nomicfoundation/edr/coverage.sol`). */
export const COVERAGE_ADDRESS = "0xc0bEc0BEc0BeC0bEC0beC0bEC0bEC0beC0beC0BE";
/**
 * Probe tags: this prefix, 8 bytes of sha256(file name), a counter. EDR's own statement tags are keccak hashes;
 * the file hash keeps tags of different files (or of a test fixture) apart.
 */
const TAG_PREFIX = "cc0b7a9c";

/** A node of solc's compact JSON AST (only the fields used here are typed). */
export interface AstNode {
  nodeType: string;
  src: string;
  [key: string]: unknown;
}

export type BranchKind = "if" | "ternary" | "&&" | "||" | "require" | "assert" | "loop" | "try";

/** One outcome of a branch point: covered when `tag` was recorded at least once. */
export interface Branch {
  file: string;
  line: number;
  column: number;
  kind: BranchKind;
  /** Which way: "true" / "false", "short-circuit" / "right evaluated", "pass" / "fail", "iterate" / "exit", … */
  outcome: string;
  /** The probed expression or clause, on one line, shortened. */
  snippet: string;
  /** 64 hex digits, lower case, no 0x: the key EDR writes into its data files. */
  tag: string;
}

/** A branch point that is not probed (inline assembly, or an expression outside a function body). */
export interface UnmeasuredBranch {
  file: string;
  line: number;
  kind: "yul-if" | "yul-switch" | "yul-for" | "outside-function";
  /** How many outcomes this point has (if, for: 2; switch: cases, plus 1 without a default). */
  outcomes: number;
}

export interface InstrumentedFile {
  /** The rewritten source: the original lines, probes inlined, probe functions appended. */
  source: string;
  /** Number of lines of the original source: lcov lines beyond it belong to the appended probe functions. */
  originalLines: number;
  branches: Branch[];
  unmeasured: UnmeasuredBranch[];
}

interface Insertion {
  /** Byte offset in the original source. */
  at: number;
  text: string;
  close: boolean;
  /** Length of the wrapped range: at one offset, outer openings go first and inner closings go first. */
  span: number;
  order: number;
}

/** Parses `src` ("start:length:fileIndex", byte offsets) into [start, end). */
function range(node: AstNode): [number, number] {
  const [start, length] = node.src.split(":").map(Number);
  if (start === undefined || length === undefined || Number.isNaN(start) || Number.isNaN(length)) {
    throw new Error(`bad AST src "${node.src}" on a ${node.nodeType} node`);
  }
  return [start, start + length];
}

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && typeof (value as { nodeType?: unknown }).nodeType === "string";
}

function children(node: AstNode): AstNode[] {
  const out: AstNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === "typeDescriptions" || key === "documentation") continue;
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) out.push(item);
    } else if (isNode(value)) {
      out.push(value);
    }
  }
  return out;
}

function child(node: AstNode, key: string): AstNode | undefined {
  const value = node[key];
  return isNode(value) ? value : undefined;
}

/**
 * Rewrites one source file with branch probes. `ast` is solc's AST of exactly `source` (`stopAfter: "parsing"`
 * suffices); `fileIndex` makes the probe function names unique across files (files import each other).
 */
export function instrumentFile(file: string, source: string, ast: AstNode, fileIndex: number): InstrumentedFile {
  const bytes = Buffer.from(source, "utf8");
  const lineStarts = [0];
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a) lineStarts.push(i + 1);
  const position = (offset: number): { line: number; column: number } => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    const start = lineStarts[lo] ?? 0;
    return { line: lo + 1, column: bytes.subarray(start, offset).toString("utf8").length + 1 };
  };
  const snippet = (start: number, end: number): string => {
    const text = bytes.subarray(start, end).toString("utf8").replace(/\s+/g, " ").trim();
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  };

  const probe = `__ccB${fileIndex}`;
  const branches: Branch[] = [];
  const unmeasured: UnmeasuredBranch[] = [];
  const insertions: Insertion[] = [];
  let tagCount = 0;
  const fileHash = createHash("sha256").update(file).digest("hex").slice(0, 16);
  const newTag = (): string => `${TAG_PREFIX}${fileHash}${(tagCount++).toString(16).padStart(8, "0")}`.padEnd(64, "0");

  /** Wraps `expr` in a probe; `at` is the node the branch is reported at. */
  const wrap = (kind: BranchKind, at: AstNode, expr: AstNode, whenTrue: string, whenFalse: string): void => {
    const [start, end] = range(expr);
    const { line, column } = position(range(at)[0]);
    const text = snippet(start, end);
    const tagTrue = newTag();
    const tagFalse = newTag();
    branches.push({ file, line, column, kind, outcome: whenTrue, snippet: text, tag: tagTrue });
    branches.push({ file, line, column, kind, outcome: whenFalse, snippet: text, tag: tagFalse });
    const order = insertions.length;
    insertions.push({
      at: start,
      text: `${probe}(0x${tagTrue}, 0x${tagFalse}, `,
      close: false,
      span: end - start,
      order,
    });
    insertions.push({ at: end, text: ")", close: true, span: end - start, order });
  };

  const countYul = (node: AstNode): void => {
    const line = position(range(node)[0]).line;
    if (node.nodeType === "YulIf") unmeasured.push({ file, line, kind: "yul-if", outcomes: 2 });
    else if (node.nodeType === "YulForLoop") unmeasured.push({ file, line, kind: "yul-for", outcomes: 2 });
    else if (node.nodeType === "YulSwitch") {
      const cases = Array.isArray(node.cases) ? (node.cases as AstNode[]) : [];
      const hasDefault = cases.some((c) => c.value === "default");
      unmeasured.push({ file, line, kind: "yul-switch", outcomes: cases.length + (hasDefault ? 0 : 1) });
    }
    for (const c of children(node)) countYul(c);
  };

  const visit = (node: AstNode, inBody: boolean): void => {
    switch (node.nodeType) {
      case "InlineAssembly": {
        const yul = child(node, "AST");
        if (yul !== undefined) countYul(yul);
        return;
      }
      case "FunctionDefinition":
      case "ModifierDefinition": {
        for (const c of children(node)) visit(c, c === child(node, "body"));
        return;
      }
      default:
        break;
    }
    const outside = (): void => {
      unmeasured.push({ file, line: position(range(node)[0]).line, kind: "outside-function", outcomes: 2 });
    };
    switch (node.nodeType) {
      case "IfStatement": {
        const condition = child(node, "condition");
        if (condition !== undefined) wrap("if", node, condition, "true", "false");
        break;
      }
      case "Conditional": {
        const condition = child(node, "condition");
        if (!inBody) outside();
        else if (condition !== undefined) wrap("ternary", node, condition, "true", "false");
        break;
      }
      case "BinaryOperation": {
        const operator = node.operator;
        const left = child(node, "leftExpression");
        if ((operator === "&&" || operator === "||") && left !== undefined) {
          if (!inBody) outside();
          else if (operator === "&&") wrap("&&", node, left, "right evaluated", "short-circuit");
          else wrap("||", node, left, "short-circuit", "right evaluated");
        }
        break;
      }
      case "WhileStatement":
      case "ForStatement":
      case "DoWhileStatement": {
        const condition = child(node, "condition");
        if (condition !== undefined) wrap("loop", node, condition, "iterate", "exit");
        break;
      }
      case "FunctionCall": {
        const callee = child(node, "expression");
        const name = callee?.nodeType === "Identifier" ? callee.name : undefined;
        const args = Array.isArray(node.arguments) ? (node.arguments as AstNode[]) : [];
        const first = args[0];
        if ((name === "require" || name === "assert") && first !== undefined) {
          if (!inBody) outside();
          else wrap(name, node, first, "pass", "fail");
        }
        break;
      }
      case "TryStatement": {
        const clauses = Array.isArray(node.clauses) ? (node.clauses as AstNode[]) : [];
        clauses.forEach((clause, i) => {
          const block = child(clause, "block");
          if (block === undefined) return;
          const [start] = range(block);
          const { line, column } = position(range(clause)[0]);
          const errorName = typeof clause.errorName === "string" && clause.errorName !== "" ? clause.errorName : "";
          const outcome = i === 0 ? "success" : `catch${errorName === "" ? "" : ` ${errorName}`}`;
          const tag = newTag();
          branches.push({ file, line, column, kind: "try", outcome, snippet: snippet(range(node)[0], start), tag });
          insertions.push({
            at: start + 1,
            text: ` ${probe}(0x${tag}, 0x${tag}, true);`,
            close: false,
            span: 0,
            order: insertions.length,
          });
        });
        break;
      }
      default:
        break;
    }
    for (const c of children(node)) visit(c, inBody);
  };
  visit(ast, false);

  insertions.sort((a, b) => {
    if (a.at !== b.at) return a.at - b.at;
    if (a.close !== b.close) return a.close ? -1 : 1;
    if (a.close) return a.span - b.span || b.order - a.order;
    return b.span - a.span || a.order - b.order;
  });
  const parts: Buffer[] = [];
  let cursor = 0;
  for (const insertion of insertions) {
    parts.push(bytes.subarray(cursor, insertion.at), Buffer.from(insertion.text, "utf8"));
    cursor = insertion.at;
  }
  parts.push(bytes.subarray(cursor));
  let rewritten = Buffer.concat(parts).toString("utf8");
  if (branches.length > 0) {
    // EDR's own trick (coverage.sol): a view function cast to pure, so probes also work in pure functions.
    rewritten +=
      `${rewritten.endsWith("\n") ? "" : "\n"}` +
      `function __ccHit${fileIndex}(uint256 tag) view { assembly ("memory-safe") { mstore(0x00, tag) ` +
      `pop(staticcall(gas(), ${COVERAGE_ADDRESS}, 0x00, 0x20, 0x00, 0x00)) } } ` +
      `function __ccPure${fileIndex}(function(uint256) view f) pure returns (function(uint256) pure g) { ` +
      `assembly { g := f } } ` +
      `function ${probe}(uint256 t, uint256 f, bool v) pure returns (bool) { ` +
      `__ccPure${fileIndex}(__ccHit${fileIndex})(v ? t : f); return v; }\n`;
  }
  const originalLines = source.endsWith("\n") ? lineStarts.length - 1 : lineStarts.length;
  return { source: rewritten, originalLines, branches, unmeasured };
}

/** Parses Solidity sources with solc-js (parsing only: no imports needed, no code generated). */
export async function parseSources(sources: Record<string, string>): Promise<Record<string, AstNode>> {
  const { default: solc } = (await import("solc")) as {
    default: { compile: (input: string) => string };
  };
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(Object.entries(sources).map(([name, content]) => [name, { content }])),
    settings: { stopAfter: "parsing", outputSelection: { "*": { "": ["ast"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage?: string; message: string }[];
    sources?: Record<string, { ast: AstNode }>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    throw new Error(
      `solc could not parse the sources: ${errors.map((e) => e.formattedMessage ?? e.message).join("\n")}`,
    );
  }
  const asts: Record<string, AstNode> = {};
  for (const name of Object.keys(sources)) {
    const ast = output.sources?.[name]?.ast;
    if (ast === undefined) throw new Error(`solc returned no AST for ${name}`);
    asts[name] = ast;
  }
  return asts;
}

/** Reads EDR's hit counts: `<coverageDir>/data/<runner>/*.json`, each `{ "<tag hex>": hits }`, summed. */
export async function readHits(coverageDir: string): Promise<Map<string, number>> {
  const hits = new Map<string, number>();
  const dataDir = path.join(coverageDir, "data");
  const runners = await readdir(dataDir).catch(() => [] as string[]);
  for (const runner of runners) {
    const files = await readdir(path.join(dataDir, runner)).catch(() => [] as string[]);
    for (const name of files.filter((f) => f.endsWith(".json"))) {
      const entries = JSON.parse(await readFile(path.join(dataDir, runner, name), "utf8")) as Record<string, number>;
      for (const [tag, count] of Object.entries(entries)) {
        const key = tag.toLowerCase().replace(/^0x/, "");
        hits.set(key, (hits.get(key) ?? 0) + count);
      }
    }
  }
  return hits;
}

export interface FileLines {
  file: string;
  /** line → hits (EDR writes 1 or 0). */
  lines: Map<number, number>;
}

/** Parses an lcov tracefile into per-file line hits (`SF:` and `DA:` records). */
export function parseLcov(text: string): FileLines[] {
  const files: FileLines[] = [];
  let current: FileLines | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("SF:")) {
      current = { file: line.slice(3), lines: new Map() };
      files.push(current);
    } else if (line.startsWith("DA:") && current !== undefined) {
      const [lineNumber, count] = line.slice(3).split(",").map(Number);
      if (lineNumber !== undefined && count !== undefined) current.lines.set(lineNumber, count);
    } else if (line === "end_of_record") {
      current = undefined;
    }
  }
  return files;
}

/** Writes per-file line hits back as an lcov tracefile (what EDR writes: TN, SF, DA, LH, LF). */
export function formatLcov(files: FileLines[]): string {
  let out = "TN:\n";
  for (const f of files) {
    out += `SF:${f.file}\n`;
    for (const [line, count] of f.lines) out += `DA:${line},${count}\n`;
    out += `LH:${[...f.lines.values()].filter((c) => c > 0).length}\n`;
    out += `LF:${f.lines.size}\nend_of_record\n`;
  }
  return out;
}

export interface BranchResult extends Branch {
  hits: number;
}

export interface FileReport {
  file: string;
  linesFound: number;
  linesHit: number;
  branchesFound: number;
  branchesHit: number;
  /** Outcomes of unprobed branch points (inline assembly, initialisers): not in branchesFound. */
  unmeasuredOutcomes: number;
  uncovered: BranchResult[];
  unmeasured: UnmeasuredBranch[];
}

export interface CoverageReport {
  lineTarget: number;
  branchTarget: number;
  linesFound: number;
  linesHit: number;
  branchesFound: number;
  branchesHit: number;
  unmeasuredOutcomes: number;
  files: FileReport[];
  branches: BranchResult[];
}

/** Joins line hits and branch hits per file. */
export function buildReport(
  lines: FileLines[],
  branches: Branch[],
  unmeasured: UnmeasuredBranch[],
  hits: ReadonlyMap<string, number>,
  targets: { lines: number; branches: number },
): CoverageReport {
  const names = new Set<string>([...lines.map((l) => l.file), ...branches.map((b) => b.file)]);
  const results: BranchResult[] = branches.map((b) => ({ ...b, hits: hits.get(b.tag) ?? 0 }));
  const files: FileReport[] = [...names].sort().map((file) => {
    const fileLines = lines.find((l) => l.file === file)?.lines ?? new Map<number, number>();
    const mine = results.filter((b) => b.file === file);
    const missing = unmeasured.filter((u) => u.file === file);
    return {
      file,
      linesFound: fileLines.size,
      linesHit: [...fileLines.values()].filter((c) => c > 0).length,
      branchesFound: mine.length,
      branchesHit: mine.filter((b) => b.hits > 0).length,
      unmeasuredOutcomes: missing.reduce((t, u) => t + u.outcomes, 0),
      uncovered: mine.filter((b) => b.hits === 0),
      unmeasured: missing,
    };
  });
  const sum = (pick: (f: FileReport) => number): number => files.reduce((t, f) => t + pick(f), 0);
  return {
    lineTarget: targets.lines,
    branchTarget: targets.branches,
    linesFound: sum((f) => f.linesFound),
    linesHit: sum((f) => f.linesHit),
    branchesFound: sum((f) => f.branchesFound),
    branchesHit: sum((f) => f.branchesHit),
    unmeasuredOutcomes: sum((f) => f.unmeasuredOutcomes),
    files,
    branches: results,
  };
}

const percent = (hit: number, found: number): string => (found === 0 ? "100.0" : ((100 * hit) / found).toFixed(1));

/** The per-file table and the list of uncovered branches, as printed by `npm run coverage`. */
export function formatReport(report: CoverageReport): string {
  const out: string[] = [];
  out.push(
    `${"file".padEnd(42)} ${"lines".padStart(14)} ${"branches".padStart(14)} ${"unmeasured".padStart(10)}`,
    "-".repeat(83),
  );
  for (const f of report.files) {
    out.push(
      `${f.file.padEnd(42)} ${`${percent(f.linesHit, f.linesFound)}% ${f.linesHit}/${f.linesFound}`.padStart(14)} ` +
        `${`${percent(f.branchesHit, f.branchesFound)}% ${f.branchesHit}/${f.branchesFound}`.padStart(14)} ` +
        `${String(f.unmeasuredOutcomes).padStart(10)}`,
    );
  }
  out.push("-".repeat(83));
  out.push(
    `${"total".padEnd(42)} ${`${percent(report.linesHit, report.linesFound)}% ${report.linesHit}/${report.linesFound}`.padStart(14)} ` +
      `${`${percent(report.branchesHit, report.branchesFound)}% ${report.branchesHit}/${report.branchesFound}`.padStart(14)} ` +
      `${String(report.unmeasuredOutcomes).padStart(10)}`,
  );
  const uncovered = report.files.flatMap((f) => f.uncovered);
  if (uncovered.length > 0) {
    out.push("", "uncovered branches:");
    for (const b of uncovered) out.push(`  ${b.file}:${b.line}:${b.column}  ${b.kind} ${b.outcome}  (${b.snippet})`);
  }
  const unmeasured = report.files.flatMap((f) => f.unmeasured);
  if (unmeasured.length > 0) {
    const byKind = new Map<string, number>();
    for (const u of unmeasured) byKind.set(u.kind, (byKind.get(u.kind) ?? 0) + u.outcomes);
    out.push(
      "",
      `unmeasured (not probed, not in the branch percentage): ${report.unmeasuredOutcomes} outcomes at ` +
        `${unmeasured.length} points (${[...byKind].map(([k, n]) => `${k} ${n}`).join(", ")})`,
    );
  }
  return out.join("\n");
}
