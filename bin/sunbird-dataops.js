#!/usr/bin/env node
// Node 24 runs the TypeScript sources directly; this shim only exists because package "bin" entries
// must be JavaScript.
import '../cli/main.ts';
