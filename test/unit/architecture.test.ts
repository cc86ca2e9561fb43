/**
 * The structure the code keeps, checked from its import statements: no import cycles; `cli/` and `scripts/`
 * never import each other; nothing but tests imports `test/`; the jobs' cores import no driver; the sync job
 * never names another job; each Lambda entry stays a short wiring file; one home for sleeping and retries.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const SOURCE_DIRS = ['functions', 'shared', 'cli', 'scripts', 'bench', 'bin'];

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...files(rel));
    else if (/\.(ts|js)$/.test(name)) out.push(rel);
  }
  return out;
}

const sources = SOURCE_DIRS.flatMap(files);
const text = new Map(sources.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]));

/** The project files a file imports (static and dynamic imports, `#alias/…` and relative paths). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  // Comments may show imports (as usage examples); only code counts.
  const code = text
    .get(file)!
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  for (const m of code.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
    const spec = m[1]!;
    if (spec.startsWith('#')) out.push(spec.slice(1));
    else if (spec.startsWith('.')) out.push(normalize(join(dirname(file), spec)));
  }
  return out;
}

const graph = new Map(sources.map((f) => [f, importsOf(f)]));

describe('architecture', () => {
  test('no import cycles', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' → '));
        return;
      }
      state.set(f, 'visiting');
      for (const dep of graph.get(f) ?? []) if (graph.has(dep)) visit(dep, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of sources) visit(f, []);
    assert.deepEqual(cycles, []);
  });

  test('cli/ and scripts/ never import each other; nothing outside test/ imports test/', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      for (const d of deps) {
        if (f.startsWith('cli/') && d.startsWith('scripts/')) bad.push(`${f} → ${d}`);
        if (f.startsWith('scripts/') && d.startsWith('cli/')) bad.push(`${f} → ${d}`);
        if (d.startsWith('test/')) bad.push(`${f} → ${d}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  test('the jobs’ cores import no driver (cassandra-driver, pg, undici, the AWS SDK): only ports', () => {
    const cores = [
      ...[
        'scan',
        'worker',
        'run',
        'local',
        'resume',
        'summary',
        'request',
        'pacing',
        'ports',
        'messages',
      ].map((n) => `shared/sync/${n}.ts`),
      ...['selection', 'delete-block', 'delete-stage', 'start', 'local', 'lists', 'ports'].map(
        (n) => `shared/keycloak/${n}.ts`,
      ),
      ...['merge', 'rules', 'process', 'types', 'codec'].map((n) => `shared/merge/${n}.ts`),
    ];
    const drivers = /from '(cassandra-driver|pg|undici|@aws-sdk\/[^']+|@platformatic\/kafka)'/;
    for (const f of cores) assert.doesNotMatch(text.get(f) ?? assert.fail(`${f} is missing`), drivers, f);
  });

  test('nothing under shared/sync names another job', () => {
    for (const f of sources.filter((s) => s.startsWith('shared/sync/'))) {
      assert.doesNotMatch(text.get(f)!, /keycloak|merge-user-courses/i, f);
    }
  });

  test('every Lambda entry is a short wiring file (≤ 40 lines)', () => {
    for (const f of sources.filter((s) => s.startsWith('functions/'))) {
      const lines = text.get(f)!.trimEnd().split('\n').length;
      assert.ok(lines <= 40, `${f}: ${lines} lines`);
    }
  });

  test('one home each for sleeping, Retry-After and retryable statuses', () => {
    const home = { sleep: 'shared/core/time.ts', retry: 'shared/core/retry.ts' };
    for (const [f, src] of text) {
      if (f !== home.sleep)
        assert.doesNotMatch(
          src,
          /new Promise[^\n]*setTimeout\(\s*(r|resolve)\b/,
          `${f} writes its own sleep`,
        );
      if (f !== home.retry) {
        assert.doesNotMatch(
          src,
          /function parseRetryAfter|function isRetryableStatus/,
          `${f} defines its own retry rule`,
        );
        assert.doesNotMatch(
          src,
          /status === 429 \|\| status >= 500/,
          `${f} has its own retryable-status rule`,
        );
      }
    }
  });

  test('the graph is read from every source folder (the checks above have something to check)', () => {
    for (const dir of SOURCE_DIRS.filter((d) => d !== 'bin')) {
      assert.ok(
        sources.some((s) => relative(dir, s) && s.startsWith(`${dir}/`)),
        dir,
      );
    }
    assert.ok([...graph.values()].flat().length > 200);
  });
});
