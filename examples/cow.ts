// Copy-on-write, step by step: map memory, write, fork, and watch which page frame each
// process maps before and after the first write. Run it: npx tsx examples/cow.ts

import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process } from '../src/index.js';
import { E_WRITE, K_PRESENT, KIND_MASK, type PtSlot } from '../src/mm/pagetable.js';

/** The frame a process maps at addr and whether the entry allows writes (like /proc/pid/pagemap). */
function pte(p: Process, addr: number): string {
  const s: PtSlot = { node: null!, idx: 0, level: 0 };
  p.mm.pt.lookup(addr / PAGE_SIZE, s);
  const flg = s.node.flg[s.idx]!;
  if ((flg & KIND_MASK) !== K_PRESENT) return 'not mapped';
  return `frame ${s.node.val[s.idx]} ${flg & E_WRITE ? 'read-write' : 'read-only'}`;
}

const machine = new Machine({ ramBytes: 64 << 20 });
const parent = machine.spawn();
const addr = parent.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
console.log(`mapped 4 pages at 0x${addr.toString(16)}: ${pte(parent, addr)} (nothing is allocated before the first touch)`);

parent.writeU32(addr, 42);
console.log(`parent wrote 42: ${pte(parent, addr)}, frames in use: ${machine.phys.usedRamFrames}`);

const child = parent.fork();
console.log('fork:');
console.log(`  parent ${pte(parent, addr)}, reads ${parent.readU32(addr)}`);
console.log(`  child  ${pte(child, addr)}, reads ${child.readU32(addr)}`);

child.writeU32(addr, 7);
console.log('child wrote 7 (a COW fault copies the page):');
console.log(`  parent ${pte(parent, addr)}, reads ${parent.readU32(addr)}`);
console.log(`  child  ${pte(child, addr)}, reads ${child.readU32(addr)}`);
console.log(`frames in use: ${machine.phys.usedRamFrames}`);

parent.writeU32(addr, 43);
console.log(`parent wrote 43 (the page is its own again, so it is reused, not copied): ${pte(parent, addr)}`);

child.exit();
parent.exit();
console.log(`both exited: frames in use: ${machine.phys.usedRamFrames}`);
