/**
 * What a Lambda function's start-up loads (issue 15): each function is bundled with the deployed esbuild
 * options (config/esbuild.cjs), and its entry with the chunks it imports statically — the code every
 * cold start reads, parses and runs — is checked against the modules that function needs only on some
 * paths, or never. Then each bundle is imported in a fresh process, as Lambda's INIT does, and the
 * Kafka client's validators, which the build defers to their first call, are shown to still validate;
 * a bundle that would need the Kafka consumer's protocol APIs, which the build leaves out, fails to build.
 * No service is needed: nothing connects at import.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type BuildOptions, build, type Metafile } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);
const deployed = require('../../config/esbuild.cjs') as {
  buildOptions: () => BuildOptions;
  startUpOutputs: (metafile: Metafile, entryOutput: string) => string[];
};
const run = promisify(execFile);

/** Per function: packages (or files) that its start-up must not load. */
const NOT_AT_START: Record<string, RegExp[]> = {
  // Needs SQS always; the Sync API never; Keycloak's PostgreSQL only for a deletion start.
  fanout: [/node_modules\/@aws-sdk\/client-ssm\//, /node_modules\/undici\//, /node_modules\/pg\//],
  // Needs the Sync API always; SQS only when a run's blocks go on to another stage.
  'sync-block': [
    /node_modules\/@aws-sdk\/client-ssm\//,
    /node_modules\/@aws-sdk\/client-sqs\//,
    /node_modules\/pg\//,
  ],
  'delete-keycloak-users': [/node_modules\/@aws-sdk\/client-ssm\//, /node_modules\/@aws-sdk\/client-sqs\//],
  // Needs a Kafka producer: never an admin or consumer client, nor the MSK IAM signer before connecting.
  'merge-user-courses': [
    /node_modules\/@aws-sdk\/client-ssm\//,
    /node_modules\/@aws-sdk\/client-sqs\//,
    /node_modules\/undici\//,
    /node_modules\/pg\//,
    /@platformatic\/kafka\/dist\/(clients|apis)\/(admin|consumer)\//,
    /node_modules\/aws-msk-iam-sasl-signer-js\//,
  ],
};
const FUNCTIONS = Object.keys(NOT_AT_START);

let dir: string;
const metafiles = new Map<string, Metafile>();

/** The deployed options (config/esbuild.cjs), for esbuild's own build. */
function options(): BuildOptions {
  return { ...deployed.buildOptions(), absWorkingDir: ROOT };
}

/** What a function's start-up loads: its entry and the chunks that imports statically. */
function startUpOutputs(meta: Metafile, name: string): string[] {
  const entry = Object.keys(meta.outputs).find((o) => o.endsWith(`/${name}.mjs`));
  assert.ok(entry, `${name}.mjs was built`);
  return deployed.startUpOutputs(meta, entry);
}

/** Imports a bundle in a fresh Node process (as Lambda's INIT does); resolves with its stdout. */
async function importInFreshProcess(file: string, then = ''): Promise<string> {
  const script = `const m = await import(${JSON.stringify(`file://${file}`)}); ${then} process.exit(0);`;
  const { stdout } = await run(
    process.execPath,
    ['--enable-source-maps', '--input-type=module', '-e', script],
    {
      cwd: path.dirname(file),
      env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', LOG_LEVEL: 'SILENT' },
      timeout: 60_000,
    },
  );
  return stdout;
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dataops-cold-start-'));
  for (const name of FUNCTIONS) {
    const { metafile } = await build({
      ...options(),
      entryPoints: [path.join(ROOT, 'functions', `${name}.ts`)],
      outdir: dir,
    });
    if (metafile) metafiles.set(name, metafile);
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('what a cold start loads', () => {
  for (const name of FUNCTIONS) {
    test(`${name}: its start-up loads none of what it needs only sometimes`, () => {
      const meta = metafiles.get(name);
      assert.ok(meta);
      const inputs = startUpOutputs(meta, name).flatMap((o) => Object.keys(meta.outputs[o]?.inputs ?? {}));
      for (const pattern of NOT_AT_START[name] ?? [])
        assert.deepEqual(
          inputs.filter((i) => pattern.test(i)),
          [],
          `${name}'s start-up loads ${pattern}`,
        );
    });

    test(`${name}: every file is named after the function, and none imports a Node built-in as an ES module`, () => {
      const meta = metafiles.get(name);
      assert.ok(meta);
      for (const [out, o] of Object.entries(meta.outputs)) {
        if (!out.endsWith('.mjs')) continue;
        assert.match(
          path.basename(out),
          new RegExp(`^${name}\\.`),
          'serverless-esbuild zips it with its function',
        );
        // Node builds an ES module facade of a built-in by reading all its exports (node:http's getters
        // load Node's internal undici); the banner's require hands over the module as it is.
        const builtins = o.imports.filter((i) => i.external && i.kind === 'import-statement');
        assert.deepEqual(builtins, [], `${out} imports built-ins as ES modules`);
      }
    });

    test(`${name}: the bundle initialises in a fresh process with the default configuration`, async () => {
      await importInFreshProcess(
        path.join(dir, `${name}.mjs`),
        "if (typeof m.handler !== 'function') process.exit(3);",
      );
    });
  }

  test('the Kafka client still validates its options in strict mode: its validators compile on first use', async () => {
    const contents = [
      "import { Producer } from '@platformatic/kafka';",
      'try {',
      "  new Producer({ clientId: 'x', bootstrapBrokers: ['127.0.0.1:9'], strict: true, acks: 'all' });",
      "  console.log('accepted');",
      '} catch (err) {',
      '  console.log(err.message);',
      '}',
      "new Producer({ clientId: 'x', bootstrapBrokers: ['127.0.0.1:9'], strict: true }).close();",
      "console.log('valid options accepted');",
    ].join('\n');
    const outdir = path.join(dir, 'kafka');
    await build({
      ...options(),
      stdin: { contents, resolveDir: ROOT, sourcefile: 'kafka-strict.ts', loader: 'ts' },
      outdir,
    });
    const out = await importInFreshProcess(path.join(outdir, 'stdin.mjs'));
    assert.match(out, /\/options\/acks must be number/);
    assert.match(out, /valid options accepted/);
  });

  test('a bundle with the Kafka consumer fails to build: the bundles carry only the producer’s protocol APIs', async () => {
    const contents = "import { Consumer } from '@platformatic/kafka';\nconsole.log(typeof Consumer);";
    await assert.rejects(
      build({
        ...options(),
        stdin: { contents, resolveDir: ROOT, sourcefile: 'kafka-consumer.ts', loader: 'ts' },
        outdir: path.join(dir, 'kafka-consumer'),
      }),
      /carry only the Kafka producer's APIs/,
    );
  });
});
