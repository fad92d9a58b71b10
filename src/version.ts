/** The package's own version, read once from package.json (the single source). */
import fs from 'node:fs';
import path from 'node:path';

/** Compiled to dist/src/version.js: the package root is two levels up. */
export const packageRoot = path.resolve(__dirname, '..', '..');

export const packageVersion: string = (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

export const runtimeName = 'nodecri';
/** The CRI API version served. */
export const criApiVersion = 'v1';
