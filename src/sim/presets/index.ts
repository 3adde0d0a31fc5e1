// The named presets, as `--preset <name>` finds them.

import type { Preset } from '../cost-model.js';
import { gtx1080tiPcie3 } from './gtx1080ti-pcie3.js';
import { a100Pcie4 } from './a100-pcie4.js';
import { h100Pcie5 } from './h100-pcie5.js';
import { gh200C2c } from './gh200-c2c.js';

export { gtx1080tiPcie3, a100Pcie4, h100Pcie5, gh200C2c };

export const PRESETS: Readonly<Record<string, Preset>> = {
  [gtx1080tiPcie3.name]: gtx1080tiPcie3,
  [a100Pcie4.name]: a100Pcie4,
  [h100Pcie5.name]: h100Pcie5,
  [gh200C2c.name]: gh200C2c,
};

/** The default: the one configuration whose constants all come from a published simulator. */
export const DEFAULT_PRESET = gtx1080tiPcie3.name;

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** The preset of that name; a RangeError listing the names otherwise. */
export function getPreset(name: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new RangeError(`unknown preset '${name}' (presets: ${presetNames().join(', ')})`);
  return p;
}
