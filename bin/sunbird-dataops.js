#!/usr/bin/env node
// Runs the TypeScript sources of a checkout (`npm ci`; `npm run cli -- …` uses the project's own Node 24).
// Installed copies run the bundle instead (package.json "bin": dist/sunbird-dataops.mjs).
// The sources need a Node that strips types; an older one gets one line instead of a stack trace, which is
// why the sources are loaded by a dynamic import after the check.
if (!process.features.typescript) {
  process.stderr.write(
    `sunbird-dataops: running from the sources needs Node.js 24 (this is ${process.version}): ` +
      'use `npm run cli -- …`, or install the package or SyncBin.zip (see the README, "Install")\n',
  );
  process.exit(2);
}
await import('../cli/main.ts');
