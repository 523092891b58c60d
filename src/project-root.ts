// Files the service reads at run time (package.json, migrations/, the console's assets) live at
// fixed places in the project, whether the code runs from src/ through tsx or compiled in dist/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));

/** A path below the project root, e.g. `projectPath('migrations')`. */
export const projectPath = (...segments: string[]) => join(PROJECT_ROOT, ...segments);
