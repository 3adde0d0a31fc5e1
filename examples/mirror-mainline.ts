// A toy device driver that mirrors a process's memory with the mainline HMM API: an MMU
// interval notifier, hmm_range_fault, and the sequence check under the driver lock
// (Documentation/mm/hmm.rst). Run it: npx tsx examples/mirror-mainline.ts
//
// The device keeps its own page table (page index -> pfn, writable). Its page-fault handler
// follows the kernel's pattern:
//
//   again: seq = mmu_interval_read_begin(sub)
//          ret = hmm_range_fault(range)          (EBUSY: goto again)
//          take the driver lock
//          if mmu_interval_read_retry(sub, seq): drop the lock, goto again
//          program the device page table from range.hmm_pfns
//          drop the driver lock
//
// and its invalidate callback takes the same lock, bumps the sequence and erases the device
// entries of the range: so the device never maps a page the CPU no longer maps.

import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HmmRange, hmmPfnToPage, hmmRangeFault, KernelError, Machine,
  MAP_ANONYMOUS, MAP_PRIVATE, MmuIntervalNotifier, mmuIntervalNotifierInsert, mmuIntervalNotifierRemove, mmuIntervalReadBegin,
  mmuIntervalReadRetry, mmuIntervalSetSeq, PAGE_SIZE, PROT_READ, PROT_WRITE, type Mm, type MmuNotifierRange,
} from 'hmmsim';

class ToyDevice {
  /** The device page table: page index in the buffer -> frame and permission. */
  readonly pt = new Map<number, { pfn: number; write: boolean }>();
  readonly sub: MmuIntervalNotifier;
  private locked = false;
  /** Called once between hmm_range_fault and the sequence check: a CPU thread racing us. */
  race: (() => void) | null = null;

  constructor(readonly mm: Mm, readonly base: number, readonly pages: number) {
    this.sub = new MmuIntervalNotifier({ invalidate: (sub, range, seq) => this.invalidate(sub, range, seq) });
    mmuIntervalNotifierInsert(this.sub, mm, base, pages * PAGE_SIZE);
  }

  private lock(): void {
    if (this.locked) throw new Error('driver lock taken twice');
    this.locked = true;
  }
  private unlock(): void {
    this.locked = false;
  }

  private invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, seq: number): boolean {
    this.lock();
    mmuIntervalSetSeq(sub, seq);
    let dropped = 0;
    for (const i of [...this.pt.keys()]) {
      const addr = this.base + i * PAGE_SIZE;
      if (addr >= range.start && addr < range.end) {
        this.pt.delete(i);
        dropped++;
      }
    }
    this.unlock();
    const s = Math.max(0, (range.start - this.base) / PAGE_SIZE);
    const e = Math.min(this.pages, (range.end - this.base) / PAGE_SIZE);
    console.log(`  invalidate ${range.event} pages ${s}-${e - 1}: device drops ${dropped} entries`);
    return true;
  }

  /** A device page fault on pages [first, first + n): returns how many passes it took. */
  fault(first: number, n: number, write: boolean): number {
    const start = this.base + first * PAGE_SIZE;
    const range = new HmmRange({
      notifier: this.sub, start, end: start + n * PAGE_SIZE,
      defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    });
    for (let pass = 1; ; pass++) {
      range.notifierSeq = mmuIntervalReadBegin(this.sub);
      try {
        hmmRangeFault(range);
      } catch (e) {
        if (e instanceof KernelError && e.errno === 'EBUSY') {
          console.log(`  pass ${pass}: hmm_range_fault -> EBUSY (our own faults invalidated the range), again`);
          continue;
        }
        throw e;
      }
      const race = this.race;
      this.race = null;
      race?.();
      this.lock();
      if (mmuIntervalReadRetry(this.sub, range.notifierSeq)) {
        this.unlock();
        console.log(`  pass ${pass}: read_retry says the range changed since read_begin, again`);
        continue;
      }
      for (let i = 0; i < n; i++) {
        if (!(range.hmmFlags[i]! & HMM_PFN_VALID)) continue;
        this.pt.set(first + i, { pfn: hmmPfnToPage(range, i), write: (range.hmmFlags[i]! & HMM_PFN_WRITE) !== 0 });
      }
      this.unlock();
      return pass;
    }
  }

  /** What the CPU maps at page i right now (a snapshot, no fault), for checking. */
  cpuView(i: number): { pfn: number; write: boolean } | null {
    const start = this.base + i * PAGE_SIZE;
    const r = new HmmRange({ notifier: this.sub, start, end: start + PAGE_SIZE });
    r.notifierSeq = mmuIntervalReadBegin(this.sub);
    hmmRangeFault(r);
    return r.hmmFlags[0]! & HMM_PFN_VALID ? { pfn: r.hmmPfns[0]!, write: (r.hmmFlags[0]! & HMM_PFN_WRITE) !== 0 } : null;
  }

  /** The mirroring guarantee: every device entry maps what the CPU maps, with no more permission. */
  check(): string {
    for (const [i, d] of this.pt) {
      const c = this.cpuView(i);
      if (!c || c.pfn !== d.pfn || (d.write && !c.write)) return `BROKEN at page ${i}`;
    }
    return `ok (${this.pt.size} device entries, all match the CPU)`;
  }

  show(): string {
    const cells: string[] = [];
    for (let i = 0; i < this.pages; i++) {
      const d = this.pt.get(i);
      cells.push(d ? (d.write ? 'W' : 'R') : '.');
    }
    return cells.join('');
  }
}

const machine = new Machine({ ramBytes: 64 << 20 });
const proc = machine.spawn();
const PAGES = 8;
const buf = proc.mmap(0, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
for (let i = 0; i < 4; i++) proc.writeU32(buf + i * PAGE_SIZE, 1000 + i);
console.log(`[mainline] ${PAGES}-page buffer; the CPU wrote pages 0-3`);

const dev = new ToyDevice(proc.mm, buf, PAGES);

console.log('device read fault on pages 0-7:');
let passes = dev.fault(0, PAGES, false);
console.log(`  mapped in ${passes} pass(es): ${dev.show()}   (W: written pages, R: zero page for the untouched ones)`);
console.log(`  check: ${dev.check()}`);

console.log('fork(): the parent\'s private pages become copy-on-write');
const child = proc.fork();
console.log(`  device: ${dev.show()}`);

console.log('device write fault on pages 0-3 (breaks COW in the parent):');
passes = dev.fault(0, 4, true);
console.log(`  mapped in ${passes} pass(es): ${dev.show()}`);
console.log(`  check: ${dev.check()}`);
console.log(`  parent reads ${proc.readU32(buf)}, child reads ${child.readU32(buf)}`);

console.log('device write fault on pages 4-5, while a CPU thread munmaps page 5 in the middle:');
dev.race = () => proc.munmap(buf + 5 * PAGE_SIZE, PAGE_SIZE);
try {
  dev.fault(4, 2, true);
} catch (e) {
  console.log(`  second pass: ${(e as KernelError).errno} (page 5 has no VMA any more)`);
}
passes = dev.fault(4, 1, true);
console.log(`  page 4 alone: mapped in ${passes} pass(es): ${dev.show()}`);
console.log(`  check: ${dev.check()}`);

console.log('exit(): every interval subscription gets RELEASE');
child.exit();
proc.exit();
console.log(`  device: ${dev.show()}`);
mmuIntervalNotifierRemove(dev.sub);
console.log('done');
