/**
 * esbuild options for serverless-esbuild (`custom.esbuild.config` in serverless.yml) and for
 * `bench/coldstart.ts`, so the benchmark measures exactly what is deployed.
 *
 * - ESM output (`.mjs`): Node 24 on Lambda loads ES modules natively, and top-level code runs once per
 *   container. CommonJS dependencies (cassandra-driver, pg) still call `require` for Node built-ins,
 *   which an ES module lacks, hence the `require` the banner makes (also `__filename`/`__dirname`, which
 *   some CJS code reads); it takes Node's own modules through `process.getBuiltinModule`, with no
 *   `import` of its own.
 * - Start-up time is the measure (`npm run bench -- coldstart`; issue 15: ≤ 150 ms of module
 *   initialisation over a trivial handler): the plugins below keep out of a start-up what its function
 *   does not run there, each saying why that is safe.
 * - Split (`splitting`): what a function needs only on some paths is imported with `import()` in the
 *   sources and lands in chunks of its own, which a start-up neither reads nor parses.
 * - The AWS SDK v3 is bundled, not taken from the runtime: measured with `npm run bench -- coldstart`
 *   (numbers and decision in serverless.yml, "Packaging"); the bench builds both variants itself.
 */
'use strict';

const { isBuiltin } = require('node:module');
const fs = require('node:fs/promises');
const path = require('node:path');

const sdkExternal = process.env.DATAOPS_SDK === 'external';

/**
 * Leaves out of the bundles code that a deployed function can never run, so each zip carries only what
 * its function needs:
 * - zod's `z.locales` namespace re-exports every translation (~45 of them, ~200 KB minified) although
 *   only English is used (zod's schemas import `locales/en.js` themselves); the namespace keeps `en`.
 * - undici's alternative HTTP parser "milo" (SIMD and non-SIMD WebAssembly, ~150 KB) is loaded only when
 *   UNDICI_USE_MILO is set, which no function does; llhttp, the default parser, stays with its fallback.
 * - cassandra-driver's `cloud` module connects to DataStax Astra (the `cloud` client option, which no
 *   function uses) and loads adm-zip (~55 KB) and node:https with the driver; the client only calls its
 *   `init`, which does nothing without that option. In the bundles `init` says it is not supported.
 */
const leaveOut = {
  name: 'dataops-leave-out',
  setup(build) {
    const inPackage = (args, pkg) =>
      args.importer.split(path.sep).join('/').includes(`/node_modules/${pkg}/`);
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      inPackage(args, 'zod')
        ? { path: path.join(args.resolveDir, args.path), namespace: 'dataops-zod-locales' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'dataops-zod-locales' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: path.dirname(args.path),
      loader: 'js',
    }));
    build.onResolve({ filter: /^\.\/datastax\/cloud$/ }, (args) =>
      inPackage(args, 'cassandra-driver') ? { path: args.path, namespace: 'dataops-no-astra' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'dataops-no-astra' }, () => ({
      contents: [
        'exports.init = async (options) => {',
        "  if (options.cloud) throw new Error('the cassandra-driver cloud option (DataStax Astra) is not bundled (config/esbuild.cjs)');",
        '};',
      ].join('\n'),
      loader: 'js',
    }));
    build.onResolve({ filter: /^\.\.\/milo\/(no-)?simd\.js$/ }, (args) =>
      inPackage(args, 'undici') ? { path: args.path, namespace: 'dataops-no-milo' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'dataops-no-milo' }, () => ({
      contents:
        "throw new Error('undici milo parser is not bundled: unset UNDICI_USE_MILO (config/esbuild.cjs)');",
      loader: 'js',
    }));
  },
};

/**
 * Node built-ins through the banner's CommonJS `require` instead of ES `import`: Node builds an ES
 * module facade for an imported built-in by reading every one of its exports, which runs the lazy
 * getters — `node:http`'s loads Node's internal copy of undici (~35 ms), `node:fs`'s its streams. The
 * CommonJS route returns the built-in's object as it is.
 */
const builtinsByRequire = {
  name: 'dataops-builtins-by-require',
  setup(build) {
    build.onResolve({ filter: /^[a-z:_/]+$/ }, (args) => {
      if (!isBuiltin(args.path)) return undefined;
      if (args.namespace === 'dataops-builtin') return { path: args.path, external: true };
      return { path: args.path, namespace: 'dataops-builtin' };
    });
    build.onLoad({ filter: /.*/, namespace: 'dataops-builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/**
 * Packages whose modules only define things: a module none of whose exports is used can be dropped whole.
 * @platformatic/kafka declares no `sideEffects`, so its admin and consumer modules, which compile JSON
 * schemas with Ajv at load (~250 ms), stayed in a bundle that only uses the Producer.
 */
const SIDE_EFFECT_FREE = ['@platformatic/kafka'];
const sideEffectFree = {
  name: 'dataops-side-effect-free',
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'dataops-side-effect-free') return undefined;
      const importer = args.importer.split(path.sep).join('/');
      const pkg = SIDE_EFFECT_FREE.find(
        (p) => args.path === p || args.path.startsWith(`${p}/`) || importer.includes(`/node_modules/${p}/`),
      );
      if (!pkg || isBuiltin(args.path)) return undefined;
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'dataops-side-effect-free',
      });
      if (resolved.errors.length > 0 || resolved.external) return undefined;
      if (!resolved.path.split(path.sep).join('/').includes(`/node_modules/${pkg}/`)) return undefined;
      return { ...resolved, sideEffects: false };
    });
  },
};

/**
 * @platformatic/kafka sets up Ajv (JSON-schema validation) when its modules load, and compiles a
 * validator for every client's option set — the producer's and the base client's alone cost ~80 ms of a
 * cold start — although a client calls them only with `strict: true` (default false; ours never set
 * it), except the consumer's group options. So in the bundles:
 * - each `ajv.compile(schema)` of the clients' `options.js` is a validator that compiles on its first
 *   call and then behaves as Ajv's (returns the result, carries `errors`);
 * - `ajv` (utils.js) is a stand-in with the three methods the package calls on it: `addKeyword` keeps
 *   the keyword definitions until Ajv is needed, `compile` and `errorsText` create Ajv (the same
 *   options, the same keywords) on first use, so Ajv's own code is not even run at start-up.
 * - the clients look protocol APIs up by name in a namespace of all ~300 of them (admin, consumer,
 *   producer…); the base client's namespace holds the producer's side only (metadata, producer,
 *   security, telemetry: all the Producer asks for), so the admin and consumer APIs (~230 KB) drop out.
 *   A bundle that also carries the Consumer or Admin client fails the build instead.
 * A package version that calls anything else on `ajv`, or no longer matches, fails the build here.
 */
const KAFKA_DIST = /[\\/]@platformatic[\\/]kafka[\\/]dist[\\/].*\.js$/;
const AJV_METHODS = new Set(['addKeyword', 'compile', 'errorsText']);
const LAZY_VALIDATOR = `
function __dataopsLazyValidator(ajv, schema) {
  let compiled;
  const validate = (data) => {
    compiled ??= ajv.compile(schema);
    const valid = compiled(data);
    validate.errors = compiled.errors;
    return valid;
  };
  validate.errors = null;
  return validate;
}
`;
const APIS_IMPORT = 'import * as apis from "../../apis/index.js";';
const PRODUCER_APIS = ['metadata', 'producer', 'security', 'telemetry'];
const producerApis = () =>
  `${PRODUCER_APIS.map((d) => `import * as __dataopsApis_${d} from "../../apis/${d}/index.js";`).join('\n')}
const apis = { ${PRODUCER_APIS.map((d) => `...__dataopsApis_${d}`).join(', ')} };`;
const NOT_PRODUCER =
  /@platformatic[\\/]kafka[\\/]dist[\\/]clients[\\/](consumer[\\/]consumer|admin[\\/]admin)\.js$/;
const AJV_IMPORT = "import { Ajv2020 } from 'ajv/dist/2020.js';";
const AJV_CREATE = /export const ajv = new Ajv2020\((\{[^;]*\})\);/;
const lazyAjv = (options) => `
let __dataopsAjv;
const __dataopsAjvKeywords = [];
function __dataopsRealAjv() {
  if (!__dataopsAjv) {
    const { Ajv2020 } = require('ajv/dist/2020.js');
    __dataopsAjv = new Ajv2020(${options});
    for (const keyword of __dataopsAjvKeywords) __dataopsAjv.addKeyword(keyword);
  }
  return __dataopsAjv;
}
export const ajv = {
  addKeyword(definition) {
    if (__dataopsAjv) __dataopsAjv.addKeyword(definition);
    else __dataopsAjvKeywords.push(definition);
    return ajv;
  },
  compile: (schema) => __dataopsRealAjv().compile(schema),
  errorsText: (errors, options) => __dataopsRealAjv().errorsText(errors, options),
};
`;

/** The source of a @platformatic/kafka module as bundled, or an error saying what no longer matches. */
function kafkaModule(file, source) {
  const unknown = [...source.matchAll(/\bajv\.(\w+)/g)].map((m) => m[1]).filter((m) => !AJV_METHODS.has(m));
  if (unknown.length > 0) return { error: `calls ajv.${unknown[0]}, which the bundles' lazy Ajv lacks` };
  if (/[\\/]dist[\\/]utils\.js$/.test(file)) {
    const create = AJV_CREATE.exec(source);
    if (!source.includes(AJV_IMPORT) || !create)
      return { error: 'no longer creates Ajv as the bundles expect' };
    return { contents: source.replace(AJV_IMPORT, '').replace(AJV_CREATE, lazyAjv(create[1])) };
  }
  if (/[\\/]dist[\\/]clients[\\/]base[\\/]base\.js$/.test(file)) {
    if (!source.includes(APIS_IMPORT))
      return { error: 'no longer imports the API namespace as the bundles expect' };
    return { contents: source.replace(APIS_IMPORT, producerApis()) };
  }
  if (/[\\/]dist[\\/]clients[\\/]\w+[\\/]options\.js$/.test(file) && source.includes('ajv.compile(')) {
    return {
      contents: `${source.replaceAll('ajv.compile(', '__dataopsLazyValidator(ajv, ')}${LAZY_VALIDATOR}`,
    };
  }
  return {};
}

const kafkaLazyAjv = {
  name: 'dataops-kafka-lazy-ajv',
  setup(build) {
    build.onLoad({ filter: KAFKA_DIST }, async (args) => {
      const { contents, error } = kafkaModule(args.path, await fs.readFile(args.path, 'utf8'));
      if (error)
        return { errors: [{ text: `@platformatic/kafka ${args.path}: ${error} (config/esbuild.cjs)` }] };
      return contents === undefined ? undefined : { contents, loader: 'js' };
    });
    build.initialOptions.metafile = true;
    build.onEnd((result) => {
      const outputs = Object.values(result.metafile?.outputs ?? {});
      const carried = outputs.flatMap((o) => Object.keys(o.inputs)).find((i) => NOT_PRODUCER.test(i));
      return carried
        ? {
            errors: [
              {
                text: `${carried} is bundled, but the bundles carry only the Kafka producer's APIs (config/esbuild.cjs)`,
              },
            ],
          }
        : undefined;
    });
  },
};

/**
 * undici's index loads every part of the package at once: all dispatchers (proxy, SOCKS, HTTP/2-only,
 * mock, snapshot), fetch, WebSocket, EventSource, the caches and their SQLite store — ~570 KB that a
 * function would parse and run at every cold start. The functions use `Pool` with the `retry`
 * interceptor (the Sync API client) and `Agent` (the Keycloak Admin API), so in a bundle `undici` is
 * the module below: those parts, from the package's own files, with the request API mixed into
 * `Dispatcher` as undici's index does. Importing anything else from `undici` fails the build.
 */
const UNDICI_PARTS = `
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import api from 'undici/lib/api/index.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import Pool from 'undici/lib/dispatcher/pool.js';
import retry from 'undici/lib/interceptor/retry.js';
import errors from 'undici/lib/core/errors.js';
Object.assign(Dispatcher.prototype, api);
export const interceptors = { retry };
export { Agent, Dispatcher, errors, Pool };
`;
const undiciParts = {
  name: 'dataops-undici-parts',
  setup(build) {
    build.onResolve({ filter: /^undici$/ }, (args) =>
      args.importer.split(path.sep).join('/').includes('/node_modules/')
        ? undefined
        : { path: 'undici', namespace: 'dataops-undici' },
    );
    build.onLoad({ filter: /.*/, namespace: 'dataops-undici' }, () => ({
      contents: UNDICI_PARTS,
      resolveDir: path.resolve(__dirname, '..'),
      loader: 'js',
    }));
  },
};

/**
 * Code a function needs only sometimes (the SSM client when a secret is configured, PostgreSQL for a
 * deletion start, the MSK IAM signer) is imported with `import()` and split into chunks of its own, so a
 * cold start neither parses nor runs it. A chunk is named after its function (`fanout.chunk-<hash>.mjs`
 * beside `fanout.mjs`): serverless-esbuild leaves files named `<other function>.*` out of a function's
 * zip, so each zip carries its own chunks only.
 */
const chunksBesideEntry = {
  name: 'dataops-chunks-beside-entry',
  setup(build) {
    const entries = build.initialOptions.entryPoints;
    const [entry] = Array.isArray(entries) ? entries : Object.values(entries ?? {});
    const file = typeof entry === 'string' ? entry : entry?.in;
    if (file) build.initialOptions.chunkNames = `${path.basename(file, path.extname(file))}.[name]-[hash]`;
  },
};

/**
 * The Kafka client's WebAssembly helpers (CRC32C for record batches, compression), as bundled by
 * @platformatic/wasm-utils, decode their inlined module with `Uint8Array.from(atob(…), c =>
 * c.codePointAt(0))`: one callback per byte, ~10 ms of every merge-user-courses start-up. Node's base64
 * decoder gives the same bytes at once. A version that no longer matches only warns: it is slower, not wrong.
 */
const WASM_DECODE = /Uint8Array\.from\(globalThis\.atob\('([A-Za-z0-9+/=]+)'\), c => c\.codePointAt\(0\)\)/;
const wasmBase64 = {
  name: 'dataops-wasm-base64',
  setup(build) {
    build.onLoad({ filter: /[\\/]@platformatic[\\/]wasm-utils[\\/]dist[\\/]bundled\.js$/ }, async (args) => {
      const source = await fs.readFile(args.path, 'utf8');
      if (!WASM_DECODE.test(source))
        return {
          contents: source,
          loader: 'js',
          warnings: [{ text: `${args.path}: wasm decoding not recognised (config/esbuild.cjs)` }],
        };
      return { contents: source.replace(WASM_DECODE, "Buffer.from('$1', 'base64')"), loader: 'js' };
    });
  },
};

/** @returns {import('esbuild').BuildOptions & Record<string, unknown>} */
function esbuildOptions() {
  return {
    bundle: true,
    // Whitespace and syntax are minified, identifiers are not: the original names stay (stack traces,
    // `constructor.name`, which some packages read) without keepNames' call per function and class, and
    // such a bundle starts ~20 ms faster than one with short names (measured, bench/coldstart.ts).
    minifyWhitespace: true,
    minifySyntax: true,
    minifyIdentifiers: false,
    keepNames: false,
    sourcemap: 'linked',
    sourcesContent: false,
    treeShaking: true,
    format: 'esm',
    splitting: true,
    platform: 'node',
    target: 'node24',
    outputFileExtension: '.mjs',
    mainFields: ['module', 'main'],
    // @platformatic/kafka's wasm helpers read `native.wasm` beside their own file at import, which a
    // bundle does not have (the function would crash at INIT); the package ships a `bundled` entry
    // with the wasm inlined for exactly this case.
    alias: { '@platformatic/wasm-utils': '@platformatic/wasm-utils/bundled' },
    // Nothing native is bundled; everything else goes into the function's entry and its chunks.
    exclude: sdkExternal ? ['@aws-sdk/*'] : [],
    banner: {
      js: [
        "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);",
        "const __filename = process.getBuiltinModule('node:url').fileURLToPath(import.meta.url);",
        "const __dirname = process.getBuiltinModule('node:path').dirname(__filename);",
      ].join(' '),
    },
    // Licence comments of the bundled packages are in node_modules, not repeated in every zip.
    legalComments: 'none',
    plugins: [
      leaveOut,
      builtinsByRequire,
      sideEffectFree,
      kafkaLazyAjv,
      wasmBase64,
      undiciParts,
      chunksBesideEntry,
    ],
    packager: 'npm',
    // Everything is bundled, so the zip needs no node_modules.
    packagerOptions: { noInstall: true },
    metafile: false,
    // Separate work folders let the packaging test and serverless-offline build side by side.
    ...(process.env.DATAOPS_ESBUILD_FOLDER ? { outputWorkFolder: process.env.DATAOPS_ESBUILD_FOLDER } : {}),
  };
}

/**
 * The same options for esbuild's own `build` (the benchmark, the tests): without serverless-esbuild's
 * keys, writing `.mjs` files as serverless-esbuild does, with the metafile.
 * @returns {import('esbuild').BuildOptions}
 */
function buildOptions() {
  const {
    exclude: _exclude,
    packager: _packager,
    packagerOptions: _packagerOptions,
    outputFileExtension: _ext,
    outputWorkFolder: _work,
    ...options
  } = esbuildOptions();
  return {
    ...options,
    outExtension: { '.js': '.mjs' },
    entryNames: '[name]',
    metafile: true,
    logLevel: 'error',
  };
}

/**
 * The outputs a start-up loads: the entry's and those its static imports reach (chunks imported with
 * `import()` are left for when they are needed). Paths as in the metafile.
 * @param {import('esbuild').Metafile} metafile
 * @param {string} entryOutput
 * @returns {string[]}
 */
function startUpOutputs(metafile, entryOutput) {
  const seen = new Set();
  const visit = (output) => {
    if (seen.has(output) || !metafile.outputs[output]) return;
    seen.add(output);
    for (const i of metafile.outputs[output].imports) if (i.kind === 'import-statement') visit(i.path);
  };
  visit(entryOutput);
  return [...seen];
}

module.exports = () => esbuildOptions();
module.exports.esbuildOptions = esbuildOptions;
module.exports.buildOptions = buildOptions;
module.exports.startUpOutputs = startUpOutputs;
module.exports.builtinsByRequire = builtinsByRequire;
