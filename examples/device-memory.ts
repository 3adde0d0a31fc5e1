// A device driver with memory of its own, written only against hmmsim's public API: it
// registers device-private memory (memremap_pages), migrates a process's pages into it
// (migrate_vma_setup / _pages / _finalize), writes them there as its compute engine would
// (memcpy_to_page), and brings them back when the CPU touches them (its migrate_to_ram).
// Run it: npx tsx examples/device-memory.ts (the script reads machine.phys.usedRamFrames only
// to print how much system memory is in use; the driver itself touches no internals)
//
// The steps are lib/test_hmm.c's: for each page collected, take a device page into use
// (zone_device_page_init, which leaves it locked), copy the system page into it
// (copy_highpage; an empty address is cleared instead), and give it as the destination; the
// core maps device-private entries in place of the CPU's PTEs. A CPU access to one of them
// calls the pagemap's migrateToRam, which runs the same three steps the other way with
// SELECT_DEVICE_PRIVATE and the faulting page as fault_page.

import {
  allocPageVma, clearHighpage, copyHighpage, DevPagemap, Machine, MAP_ANONYMOUS, MAP_PRIVATE, memcpyFromPage, memcpyToPage,
  memremapPages, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migratePfn,
  migratePfnHas, migratePfnToPage, migrateVmaFinalize, migrateVmaPages, migrateVmaSetup, newMigrateVma, PAGE_SIZE, pagemap, PROT_READ,
  PROT_WRITE, trylockPage, VM_FAULT_OOM, zoneDevicePageInit, type MigrateVma, type Process, type VmFault,
} from 'hmmsim';

class Accelerator {
  readonly pagemap: DevPagemap;
  private readonly free: number[] = [];
  /** Where each device page in use is mapped (the device's own page table, reversed). */
  readonly at = new Map<number, number>();
  pageFrees = 0;
  faults = 0;

  constructor(readonly machine: Machine, frames: number) {
    this.pagemap = new DevPagemap('private', this, {
      pageFree: (pfn) => {
        this.pageFrees++;
        this.at.delete(pfn);
        this.free.push(pfn);
      },
      migrateToRam: (vmf) => this.migrateToRam(vmf),
    });
    const first = memremapPages(machine, this.pagemap, frames);
    for (let i = frames - 1; i >= 0; i--) this.free.push(first + i);
  }

  get freePages(): number {
    return this.free.length;
  }

  /** Migrate [addr, addr + npages pages) of one VMA into device memory; returns the pages moved. */
  migrateToDevice(p: Process, addr: number, npages: number): number {
    const args = newMigrateVma(p.mm.findVma(addr)!, addr, addr + npages * PAGE_SIZE, MIGRATE_VMA_SELECT_SYSTEM, this);
    migrateVmaSetup(args);
    for (let i = 0; i < args.npages; i++) {
      const s = args.src[i]!;
      if (!migratePfnHas(s, MIGRATE_PFN_MIGRATE)) continue;
      const dpage = this.free.pop();
      if (dpage === undefined) break; // out of device memory: the rest stay in system memory
      zoneDevicePageInit(this.machine, dpage);
      const spage = migratePfnToPage(s); // -1 for an address with no page yet
      if (spage >= 0) copyHighpage(this.machine, dpage, spage);
      else clearHighpage(this.machine, dpage);
      args.dst[i] = migratePfn(dpage) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    }
    migrateVmaPages(args);
    const moved = this.record(args);
    migrateVmaFinalize(args);
    return moved;
  }

  /** The device writes into its own memory at a user address it holds. */
  write(addr: number, text: string): void {
    const pfn = [...this.at].find(([, a]) => a === addr)?.[0];
    if (pfn === undefined) throw new Error(`the device does not hold 0x${addr.toString(16)}`);
    memcpyToPage(this.machine, pfn, 0, new TextEncoder().encode(text));
  }

  /** The device reads a string from its own memory. */
  read(addr: number, len: number): string {
    const pfn = [...this.at].find(([, a]) => a === addr)![0];
    const out = new Uint8Array(len);
    memcpyFromPage(this.machine, out, pfn, 0);
    return new TextDecoder().decode(out);
  }

  /** dev_pagemap_ops.migrate_to_ram: the CPU touched one of our pages; bring it back. */
  private migrateToRam(vmf: VmFault): number {
    this.faults++;
    const args = newMigrateVma(vmf.vma, vmf.address, vmf.address + PAGE_SIZE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, this, vmf.page);
    migrateVmaSetup(args);
    const s = args.src[0]!;
    if (migratePfnHas(s, MIGRATE_PFN_MIGRATE)) {
      const dpage = allocPageVma(vmf.vma, vmf.address);
      if (dpage < 0) {
        migrateVmaFinalize(args); // nothing moves: the page stays on the device
        return VM_FAULT_OOM;
      }
      trylockPage(this.machine, dpage);
      copyHighpage(this.machine, dpage, migratePfnToPage(s));
      args.dst[0] = migratePfn(dpage) + (migratePfnHas(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return 0;
  }

  /** Note where each page that moved in lives; count them. */
  private record(args: MigrateVma): number {
    let moved = 0;
    for (let i = 0; i < args.npages; i++) {
      if (!migratePfnHas(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      this.at.set(migratePfnToPage(args.dst[i]!), args.start + i * PAGE_SIZE);
      moved++;
    }
    return moved;
  }
}

const machine = new Machine({ ramBytes: 16 << 20 });
const dev = new Accelerator(machine, 64);
const p = machine.spawn();
const buf = p.mmap(0, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
const text = (s: string) => new TextEncoder().encode(s);
const str = (addr: number, len: number) => new TextDecoder().decode(p.read(addr, len));
for (let i = 0; i < 6; i++) p.write(buf + i * PAGE_SIZE, text(`cpu wrote page ${i}`)); // pages 6-7 stay empty
console.log(`8-page buffer; the CPU wrote pages 0-5; ${machine.phys.usedRamFrames} system pages in use`);

const moved = dev.migrateToDevice(p, buf, 8);
const kinds = [...Array(8).keys()].map((i) => pagemap(p.mm, buf + i * PAGE_SIZE).kind);
console.log(`migrated ${moved} pages to the device; the CPU's entries: ${kinds.join(' ')}`);
console.log(`system pages in use: ${machine.phys.usedRamFrames}; device pages in use: ${64 - dev.freePages}`);
console.log(`the device reads page 3: "${dev.read(buf + 3 * PAGE_SIZE, 16)}"`);

for (const i of [2, 3, 7]) dev.write(buf + i * PAGE_SIZE, `device wrote ${i}`);
console.log('the device wrote pages 2, 3 and 7 in its memory');

console.log(`the CPU reads page 3: "${str(buf + 3 * PAGE_SIZE, 14)}" (migrate_to_ram calls: ${dev.faults})`);
console.log(`the CPU reads page 7: "${str(buf + 7 * PAGE_SIZE, 14)}" (migrate_to_ram calls: ${dev.faults})`);
console.log(`the CPU reads page 0: "${str(buf, 16)}" (migrate_to_ram calls: ${dev.faults})`);
console.log(`page 3 is now ${pagemap(p.mm, buf + 3 * PAGE_SIZE).kind}; page 2 is still ${pagemap(p.mm, buf + 2 * PAGE_SIZE).kind}`);
console.log(`page_free calls so far: ${dev.pageFrees}`);

p.exit();
console.log(`after exit: page_free calls ${dev.pageFrees}, device pages in use ${64 - dev.freePages}, system pages in use ${machine.phys.usedRamFrames}`);
console.log('done');
