// A toy device driver that mirrors a process's memory with the 4.17 HMM API ("hmm: fixes and
// documentations v2"): an hmm_mirror with sync_cpu_device_pagetables and release, the
// driver's own pfn encoding (flags[], values[], pfn_shift, as nouveau's RFC had it), per-page
// requests to hmm_vma_fault, and hmm_vma_range_done under the driver lock.
// Run it: npx tsx examples/mirror-4.17.ts
//
// The device fault handler follows the 4.17 documentation (pattern B):
//
//   again: fill range.pfns with requests (VALID = read, VALID|WRITE = write)
//          ret = hmm_vma_fault(range, block)     (EBUSY: mmap lock dropped, goto again)
//          take the driver lock
//          if !hmm_vma_range_done(range): drop the lock, goto again
//          program the device page table from range.pfns
//          drop the driver lock
//
// sync_cpu_device_pagetables takes the same lock and erases the device entries of [start, end).

import { KernelError, Machine, MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, WouldBlock, type Mm } from 'hmmsim';
import { HmmMirror, hmmMirrorRegister, hmmMirrorUnregister, HmmRange, hmmPfnToPfn, hmmVmaFault, hmmVmaRangeDone } from 'hmmsim/v417';

// The driver's page-table format: valid bit 0, write bit 1, no device-private bit; the pfn
// from bit 12 up. Its "error" and "special" values are the same, as the API allows.
const DEV_VALID = 1 << 0;
const DEV_WRITE = 1 << 1;
const DEV_ERROR = 1 << 2;
const DEV_NONE = 0;
const FLAGS: [number, number, number] = [DEV_VALID, DEV_WRITE, 0];
const VALUES: [number, number, number] = [DEV_ERROR, DEV_NONE, DEV_ERROR];
const SHIFT = 12;

class ToyDevice {
  /** The device page table, in the driver's own format: one entry per page of the buffer. */
  readonly pt: Float64Array;
  readonly mirror: HmmMirror;
  private locked = false;
  released = false;
  race: (() => void) | null = null;

  constructor(readonly mm: Mm, readonly base: number, readonly pages: number) {
    this.pt = new Float64Array(pages);
    this.mirror = new HmmMirror({
      syncCpuDevicePagetables: (_m, update, start, end) => {
        this.lock();
        let dropped = 0;
        for (let i = 0; i < pages; i++) {
          const a = base + i * PAGE_SIZE;
          if (a >= start && a < end && this.pt[i] !== DEV_NONE) {
            this.pt[i] = DEV_NONE;
            dropped++;
          }
        }
        this.unlock();
        if (dropped) console.log(`  sync_cpu_device_pagetables(${update}): device drops ${dropped} entries`);
      },
      release: () => {
        // The mm is going away: stop the device for good.
        this.pt.fill(DEV_NONE);
        this.released = true;
        console.log('  release: device stopped');
      },
    });
    hmmMirrorRegister(this.mirror, mm);
  }

  private lock(): void {
    if (this.locked) throw new Error('driver lock taken twice');
    this.locked = true;
  }
  private unlock(): void {
    this.locked = false;
  }

  /** Device fault: `want` is one letter per page of the buffer: r (read), w (write), . (nothing). */
  fault(want: string): number {
    const range = new HmmRange({
      vma: this.mm.findVma(this.base)!, start: this.base, end: this.base + this.pages * PAGE_SIZE, flags: FLAGS, values: VALUES, pfnShift: SHIFT,
    });
    for (let pass = 1; ; pass++) {
      for (let i = 0; i < this.pages; i++) range.pfns[i] = want[i] === 'w' ? DEV_VALID | DEV_WRITE : want[i] === 'r' ? DEV_VALID : 0;
      try {
        hmmVmaFault(range, true);
      } catch (e) {
        if (e instanceof WouldBlock) throw e; // a page under migration: a real driver would wait on e.wait()
        if (e instanceof KernelError && e.errno === 'EBUSY') continue;
        throw e;
      }
      const race = this.race;
      this.race = null;
      race?.();
      this.lock();
      if (!hmmVmaRangeDone(range)) {
        this.unlock();
        console.log(`  pass ${pass}: hmm_vma_range_done = false (the range was invalidated), again`);
        continue;
      }
      for (let i = 0; i < this.pages; i++) if (want[i] !== '.') this.pt[i] = range.pfns[i]!;
      this.unlock();
      return pass;
    }
  }

  show(): string {
    let s = '';
    for (let i = 0; i < this.pages; i++) {
      const e = this.pt[i]!;
      s += e === DEV_NONE ? '.' : e === DEV_ERROR ? 'E' : e % 4 & DEV_WRITE ? 'W' : 'R';
    }
    return s;
  }

  /** The guarantee: each device entry maps the CPU's frame, with no more permission. */
  check(proc: { mm: Mm }): string {
    const probe = new HmmRange({
      vma: proc.mm.findVma(this.base)!, start: this.base, end: this.base + this.pages * PAGE_SIZE, flags: FLAGS, values: VALUES, pfnShift: SHIFT,
    });
    hmmVmaFault(probe, true); // no requests: a snapshot
    hmmVmaRangeDone(probe);
    let n = 0;
    for (let i = 0; i < this.pages; i++) {
      const d = this.pt[i]!;
      if (d === DEV_NONE) continue;
      n++;
      const c = probe.pfns[i]!;
      if (hmmPfnToPfn(probe, c) !== hmmPfnToPfn(probe, d) || (d % 4 & DEV_WRITE && !(c % 4 & DEV_WRITE))) return `BROKEN at page ${i}`;
    }
    return `ok (${n} device entries, all match the CPU)`;
  }
}

const machine = new Machine({ ramBytes: 64 << 20 });
const proc = machine.spawn();
const PAGES = 8;
const buf = proc.mmap(0, PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
for (let i = 0; i < 4; i++) proc.writeU32(buf + i * PAGE_SIZE, 2000 + i);
console.log(`[4.17] ${PAGES}-page buffer; the CPU wrote pages 0-3`);

const dev = new ToyDevice(proc.mm, buf, PAGES);

console.log('device fault, per page: read 0-3, write 4-5, nothing for 6-7:');
let passes = dev.fault('rrrrww..');
console.log(`  mapped in ${passes} pass(es): ${dev.show()}`);
console.log(`  check: ${dev.check(proc)}`);

console.log('fork(): the parent\'s private pages become copy-on-write');
const child = proc.fork();
console.log(`  device: ${dev.show()}`);

console.log('device fault: write page 0 (breaks COW), read 1-3:');
passes = dev.fault('wrrr....');
console.log(`  mapped in ${passes} pass(es): ${dev.show()}`);
console.log(`  check: ${dev.check(proc)}`);
console.log(`  parent reads ${proc.readU32(buf)}, child reads ${child.readU32(buf)}`);

console.log('device fault on page 2 while a CPU thread discards it (madvise DONTNEED) in the middle:');
dev.race = () => proc.madvise(buf + 2 * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
passes = dev.fault('..r.....');
console.log(`  mapped in ${passes} pass(es): ${dev.show()}`);
console.log(`  check: ${dev.check(proc)}`);

console.log('exit(): release runs before the address space goes away');
child.exit();
proc.exit();
console.log(`  device: ${dev.show()}; the mirror stays registered (the mm is a zombie) until unregister`);
hmmMirrorUnregister(dev.mirror);
console.log('done');
