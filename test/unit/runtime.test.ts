// One Node runtime across what ships: the image, the Action, the engines the packages declare,
// and the second Node CI runs the suite on all name the current LTS; Node 20 is past end of life.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { at, dockerfileStages, readText, readYaml } from '../support/packaging-files.ts';

const LTS = 24;
const imageMajor = () => Number(/^node:(\d+)-/.exec(dockerfileStages().at(-1)!.from)?.[1]);

describe('Node runtime', () => {
  it('the image runs on the current LTS', () => {
    expect(imageMajor()).toBe(LTS);
  });

  it('the service and the client declare engines >=22, which the image satisfies', () => {
    for (const file of ['package.json', 'client/package.json']) {
      const engines = JSON.parse(readText(file)).engines.node as string;
      expect(engines, file).toBe('>=22');
      expect(imageMajor()).toBeGreaterThanOrEqual(Number(engines.slice(2)));
    }
  });

  it("the Action runs on GitHub's runner's Node of the same major", () => {
    const action = readYaml('action/action.yml')[0] as { runs: { using: string } };
    expect(action.runs.using).toBe(`node${LTS}`);
  });

  it("CI runs the suite on the image's Node too, installed by .ci/node-lts", () => {
    expect(readText('.ci/node-lts')).toMatch(new RegExp(`^major=${LTS}$`, 'm'));
    const ci = readText('.ci/run');
    expect(ci).toMatch(/node24="\$\(\.ci\/node-lts\)"/);
    expect(ci).toMatch(/PATH="\$\(dirname "\$node24"\):\$PATH" npx vitest run "\$\{node24_tests\[@\]\}"/);
  });

  it('every test the Node 24 pass names exists, so a renamed file cannot drop out of it unseen', () => {
    const list = /^node24_tests=\(\n([\s\S]*?)\n\)$/m.exec(readText('.ci/run'))?.[1];
    const paths = list!.split('\n').map((line) => line.trim());
    expect(paths).toContain('test/unit/');
    expect(paths.filter((path) => !existsSync(at(path)))).toEqual([]);
  });
});
