// Typed kernel errors. Every failing entry point throws one of these, naming the errno the
// kernel would return, and changes nothing (docs/architecture.md decision 5).

export const ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EIO: 5, ENXIO: 6, E2BIG: 7, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EFAULT: 14, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, ENOSPC: 28, ERANGE: 34,
  EDEADLK: 35, ETIME: 62, EOVERFLOW: 75, EOPNOTSUPP: 95,
} as const;

export type Errno = keyof typeof ERRNO;

export class KernelError extends Error {
  override readonly name: string = 'KernelError';
  constructor(readonly errno: Errno, message: string) {
    super(`${errno}: ${message}`);
  }
  /** The kernel's negative return value, e.g. -14 for EFAULT. */
  get code(): number {
    return -ERRNO[this.errno];
  }
}

/** A CPU access that the kernel would answer with a signal (SIGSEGV, SIGBUS). */
export class SignalError extends KernelError {
  override readonly name = 'SignalError';
  constructor(readonly signal: 'SIGSEGV' | 'SIGBUS', readonly addr: number, message: string) {
    super('EFAULT', `${signal} at 0x${addr.toString(16)}: ${message}`);
  }
}

/**
 * Thrown where the kernel would sleep (on a page lock held by a migration, on an
 * invalidation in progress). Operations are atomic, so the sleeper gives up with nothing
 * changed; `wait()` resolves when it may try again. `blocking()` (wait.ts) does that loop.
 */
export class WouldBlock extends KernelError {
  override readonly name = 'WouldBlock';
  constructor(message: string, readonly wait: () => Promise<void>) {
    super('EAGAIN', message);
  }
}

/** The sleeping form of a call lives with the other sleeping machinery (wait.ts). */
export { blocking } from './wait.js';

export function fail(errno: Errno, message: string): never {
  throw new KernelError(errno, message);
}
