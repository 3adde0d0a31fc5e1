// HMM operations with no user-space peer: measured on the model only, against the targets.

export interface HmmOp {
  run(bytes: number): { pages: number; seconds: number };
  target: string;
  met(rate: number, samples: number[]): boolean;
}

export const HMM_OPS: Record<string, HmmOp> = {};
