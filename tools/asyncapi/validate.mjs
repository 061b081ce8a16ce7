// Parse an AsyncAPI document with the AsyncAPI project's own parser; exit 1 on any error diagnostic.
// usage: node tools/asyncapi/validate.mjs docs/asyncapi.yaml
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs <asyncapi document>");
  process.exit(2);
}
const text = await readFile(path, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text, { source: path });
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  const where = d.path && d.path.length ? d.path.join(".") : "(document)";
  const stream = d.severity === 0 ? console.error : console.log;
  stream(`${SEVERITY[d.severity] ?? d.severity} ${d.code}: ${d.message} at ${where}`);
}
if (!document || errors.length > 0) {
  console.error(`${path}: INVALID (${errors.length} error(s))`);
  process.exit(1);
}
const messages = document.allMessages().length;
const channels = document.allChannels().length;
console.log(`${path}: valid AsyncAPI ${document.version()} (${channels} channels, ${messages} messages, ${diagnostics.length - errors.length} non-error diagnostics)`);
