// Prints the raw and gzipped size of the built widget and fails above the budget.
//   node scripts/size.mjs            -> check (exit 1 if over budget or missing)
//   node scripts/size.mjs --report   -> same, used at the end of `npm run build`
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const BUDGET_BYTES = 50 * 1024; // 50 kB gzipped
const file = fileURLToPath(new URL('../dist/supportai-widget.js', import.meta.url));

let buf;
try {
  buf = readFileSync(file);
} catch {
  console.error(`size: ${file} not found - run \`npm run build\` first`);
  process.exit(1);
}
const gz = gzipSync(buf, { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(2) + ' kB';
console.log(`supportai-widget.js: ${kb(buf.length)} raw, ${kb(gz)} gzipped (budget ${kb(BUDGET_BYTES)} gzipped)`);
if (gz > BUDGET_BYTES) {
  console.error(`size: over budget by ${kb(gz - BUDGET_BYTES)}`);
  process.exit(1);
}
