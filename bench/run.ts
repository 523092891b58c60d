// Runs every benchmark in turn, each in its own process; each prints one JSON object on stdout.
// Usage: npm run bench [-- --quick]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } }, strict: true });
const quick = values.quick === true;

// audit-export predates --quick and takes its size as --events instead.
const BENCHMARKS: { file: string; args: string[] }[] = [
  { file: 'issue.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'revoke.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'scale.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'audit-export.bench.ts', args: quick ? ['--events', '5000'] : [] },
  { file: 'burst.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'ci-sweep.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'webhook.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'controller.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'live-keys.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'issue-scaling.bench.ts', args: quick ? ['--quick'] : [] },
  { file: 'vault-renewal.bench.ts', args: quick ? ['--quick'] : [] },
];

function run(file: string, args: string[]): Promise<number> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/**
 * Quick runs share this process (loading the service's modules costs seconds per process on a small
 * machine); scale goes first there so its memory figure is not inflated by the others.
 */
async function runHere(file: string, args: string[]): Promise<number> {
  process.argv = [process.argv[0]!, fileURLToPath(new URL(file, import.meta.url)), ...args];
  try {
    await import(`./${file}`);
    return 0;
  } catch (error) {
    console.error(`${file}: ${(error as Error).stack ?? error}`);
    return 1;
  }
}

// The quick run keeps to a minute: the benchmarks that start several service processes or a
// controller run in full runs only, or alone with their own --quick.
const QUICK_ORDER = [
  'scale.bench.ts',
  'issue.bench.ts',
  'revoke.bench.ts',
  'audit-export.bench.ts',
  'burst.bench.ts',
  'ci-sweep.bench.ts',
];
const byFile = (file: string) => BENCHMARKS.find((benchmark) => benchmark.file === file)!;
const order = quick ? QUICK_ORDER.map(byFile) : BENCHMARKS;
if (quick) {
  const left = BENCHMARKS.filter(({ file }) => !QUICK_ORDER.includes(file)).map(({ file }) => file);
  console.error(
    `quick run; full runs only (or alone: node --import tsx bench/<file> --quick): ${left.join(', ')}`,
  );
}
const started = performance.now();
const failed: string[] = [];
for (const { file, args } of order) {
  const began = performance.now();
  const code = await (quick ? runHere(file, args) : run(file, args));
  console.error(
    `${file}: ${code === 0 ? 'done' : `failed (exit ${code})`} in ${((performance.now() - began) / 1000).toFixed(1)} s`,
  );
  if (code !== 0) failed.push(file);
}
console.error(
  `all benchmarks: ${((performance.now() - started) / 1000).toFixed(1)} s${failed.length ? `; failed: ${failed.join(', ')}` : ''}`,
);
process.exitCode = failed.length ? 1 : 0;
