// Loading a user's driver module for `hmmsim check`: a JavaScript or TypeScript file whose
// default export (or export named `driver`) is a CheckDriver, or a probe function.

import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CheckDriver } from './driver.js';

/** The CheckDriver a module exports; a TypeError says what is wrong with it. */
export function driverFromModule(mod: Record<string, unknown>, name: string): CheckDriver {
  const exp = mod.default ?? mod.driver;
  if (typeof exp === 'function') return { name, probe: exp as CheckDriver['probe'] };
  if (exp && typeof exp === 'object' && typeof (exp as CheckDriver).probe === 'function') {
    const d = exp as CheckDriver;
    return d.name ? d : { name, probe: (env) => d.probe(env) };
  }
  throw new TypeError(`${name}: the module must export a CheckDriver ({ probe(env) }) or a probe function, as its default export or as 'driver'`);
}

/** Import the driver module at `path` (relative to the working directory). TypeScript needs tsx. */
export async function loadDriver(path: string): Promise<CheckDriver> {
  const file = resolve(path);
  const url = pathToFileURL(file).href;
  const name = basename(file).replace(/\.[cm]?[jt]s$/, '');
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw e;
    // A .ts module under plain node: register tsx's loader if it is installed, and try again.
    try {
      const api = (await import('tsx/esm/api')) as { register: () => unknown };
      api.register();
    } catch {
      throw new Error(`${path}: loading TypeScript needs tsx (npm install tsx, or run node --import tsx), or compile the driver to JavaScript`);
    }
    mod = (await import(url)) as Record<string, unknown>;
  }
  return driverFromModule(mod, name);
}
