// The invariants `hmmsim check` holds a driver to, checked after every step of every
// schedule, and the error that names the first one broken.

/** Invariant names, as reports and --json print them. */
export type Invariant =
  | 'device-map-beyond-cpu'
  | 'device-maps-freed-frame'
  | 'device-read-stale'
  | 'device-write-lost'
  | 'page-free-once'
  | 'deadlock'
  | 'lost-wakeup'
  | 'driver-error';

/** One line per invariant: what it demands. */
export const INVARIANTS: Readonly<Record<Invariant, string>> = {
  'device-map-beyond-cpu': 'the device maps only what the CPU maps (the same frame), with no more permission',
  'device-maps-freed-frame': 'the device maps no frame that has been freed',
  'device-read-stale': 'every device read sees the CPU\'s data',
  'device-write-lost': 'no device write is lost (the CPU reads what the device wrote)',
  'page-free-once': 'every device page in use is freed (page_free) exactly once: no double free, none left after teardown',
  deadlock: 'no deadlock (threads waiting for locks each other hold, or a lock taken twice)',
  'lost-wakeup': 'no lost wake-up (a thread asleep on something nobody will signal)',
  'driver-error': 'the driver throws nothing but the errors an access may fail with (EFAULT, EPERM, ESRCH, ...)',
};

/** The first invariant a schedule broke. */
export class Violation extends Error {
  override readonly name = 'Violation';
  constructor(
    readonly invariant: Invariant,
    message: string,
    /** The step after which it was seen (1-based), and the thread that ran it. */
    readonly step: number,
    readonly thread: string,
  ) {
    super(`${invariant}: ${message}`);
  }
  /** The message without the invariant's name. */
  get detail(): string {
    return this.message.slice(this.invariant.length + 2);
  }
}
