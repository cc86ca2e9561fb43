/**
 * Injected into the CommonJS bundle that becomes the single executable's main script (esbuild `inject`,
 * with `define` mapping `import.meta.url`/`filename`/`dirname` to these): ES modules in the bundle (e.g.
 * `createRequire(import.meta.url)` in @platformatic/kafka) would otherwise read an empty `import.meta`.
 * In a single executable `__filename` is the executable itself.
 */
import { pathToFileURL } from 'node:url';

export const importMetaFilename: string = __filename;
export const importMetaDirname: string = __dirname;
export const importMetaUrl: string = pathToFileURL(__filename).href;
