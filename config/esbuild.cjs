/**
 * esbuild options for serverless-esbuild (`custom.esbuild.config` in serverless.yml) and for
 * `bench/coldstart.ts`, so the benchmark measures exactly what is deployed.
 *
 * - ESM output (`.mjs`): Node 24 on Lambda loads ES modules natively, and top-level code runs once per
 *   container. CommonJS dependencies (cassandra-driver, pg) still call `require` for Node built-ins,
 *   which an ES module lacks, hence the `createRequire` banner (also `__filename`/`__dirname`, which
 *   some CJS code reads).
 * - The AWS SDK v3 is bundled, not taken from the runtime: measured with `node bench/coldstart.ts`
 *   (numbers and decision in serverless.yml, "Packaging"); the bench builds both variants itself.
 */
'use strict';

const path = require('node:path');

const sdkExternal = process.env.DATAOPS_SDK === 'external';

/**
 * Leaves out of the bundles code that a deployed function can never run, so each zip carries only what
 * its function needs:
 * - zod's `z.locales` namespace re-exports every translation (~45 of them, ~200 KB minified) although
 *   only English is used (zod's schemas import `locales/en.js` themselves); the namespace keeps `en`.
 * - undici's alternative HTTP parser "milo" (SIMD and non-SIMD WebAssembly, ~150 KB) is loaded only when
 *   UNDICI_USE_MILO is set, which no function does; llhttp, the default parser, stays with its fallback.
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

/** @returns {import('esbuild').BuildOptions & Record<string, unknown>} */
function esbuildOptions() {
  return {
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    sourcesContent: false,
    // Keep the original function names in stack traces without the cost of unminified code.
    keepNames: true,
    treeShaking: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    outputFileExtension: '.mjs',
    mainFields: ['module', 'main'],
    // @platformatic/kafka's wasm helpers read `native.wasm` beside their own file at import, which a
    // bundle does not have (the function would crash at INIT); the package ships a `bundled` entry
    // with the wasm inlined for exactly this case.
    alias: { '@platformatic/wasm-utils': '@platformatic/wasm-utils/bundled' },
    // Nothing native is bundled; everything else goes into the one file.
    exclude: sdkExternal ? ['@aws-sdk/*'] : [],
    banner: {
      js: [
        "import { createRequire as __dataopsCreateRequire } from 'node:module';",
        "import { fileURLToPath as __dataopsFileURLToPath } from 'node:url';",
        "import { dirname as __dataopsDirname } from 'node:path';",
        'const require = __dataopsCreateRequire(import.meta.url);',
        'const __filename = __dataopsFileURLToPath(import.meta.url);',
        'const __dirname = __dataopsDirname(__filename);',
      ].join(' '),
    },
    // Licence comments of the bundled packages are in node_modules, not repeated in every zip.
    legalComments: 'none',
    plugins: [leaveOut],
    packager: 'npm',
    // Everything is bundled, so the zip needs no node_modules.
    packagerOptions: { noInstall: true },
    metafile: false,
    // Separate work folders let the packaging test and serverless-offline build side by side.
    ...(process.env.DATAOPS_ESBUILD_FOLDER ? { outputWorkFolder: process.env.DATAOPS_ESBUILD_FOLDER } : {}),
  };
}

module.exports = () => esbuildOptions();
module.exports.esbuildOptions = esbuildOptions;
