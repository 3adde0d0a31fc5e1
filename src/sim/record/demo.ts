// Recording the demo (`hmmsim demo --record`): the recorder attaches when the demo's machine
// and device exist, and each step of the walk-through becomes a mark.

import type { DemoOptions } from '../demo.js';
import { svmDeviceSource } from './devices.js';
import type { RecordDoc } from './format.js';
import { Recorder, type RecorderOptions } from './recorder.js';

export interface DemoRecording {
  /** Pass these to runDemo. */
  hooks: Pick<DemoOptions, 'onSetup' | 'onStepStart'>;
  /** After the run: the record. */
  finish(): RecordDoc;
}

export function recordDemo(opts: RecorderOptions = {}): DemoRecording {
  let rec: Recorder | null = null;
  return {
    hooks: {
      onSetup: (machine, device) => {
        rec = new Recorder(opts).attach(machine);
        rec.addDevice(svmDeviceSource(device, 'dev0'));
      },
      onStepStart: (_i, name) => rec?.mark(name),
    },
    finish() {
      if (!rec) throw new Error('the demo did not start');
      return rec.finish();
    },
  };
}
