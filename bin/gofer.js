#!/usr/bin/env node
// The `gofer` command. The TypeScript sources are compiled to dist/ by `npm install`
// (the package's prepare script) or `npm run build`.
import { main } from '../dist/src/cli.js';

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err?.stack ?? String(err)); process.exitCode = 70; },
);
