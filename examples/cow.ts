// Copy-on-write, step by step: map memory, write, fork, and watch which page frame each
// process maps before and after the first write (read with pagemap(), hmmsim's
// /proc/pid/pagemap). Run it: npx tsx examples/cow.ts

import { Machine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, pagemap, PROT_READ, PROT_WRITE, type Process } from 'hmmsim';

/** One line of what a process maps at addr: the frame, whether the entry is writable, and the value there. */
function show(p: Process, addr: number): string {
  const e = pagemap(p.mm, addr);
  if (!e.present) return 'not present';
  return `pfn ${e.pfn} ${e.kind} ${e.write ? 'read-write' : 'read-only'}`;
}

const machine = new Machine({ ramBytes: 64 << 20 });
const parent = machine.spawn();
const addr = parent.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
console.log(`mmap: 4 pages at 0x${addr.toString(16)}, page 0 ${show(parent, addr)}, frames in use: ${machine.phys.usedRamFrames}`);

console.log(`read: parent reads ${parent.readU32(addr)}, page 0 ${show(parent, addr)} (the shared zero page)`);

parent.writeU32(addr, 42);
console.log(`write: parent writes 42, page 0 ${show(parent, addr)}, frames in use: ${machine.phys.usedRamFrames}`);

const child = parent.fork();
console.log('fork: both map the same frame, write-protected:');
console.log(`  parent ${show(parent, addr)}, reads ${parent.readU32(addr)}`);
console.log(`  child  ${show(child, addr)}, reads ${child.readU32(addr)}`);

child.writeU32(addr, 7);
console.log('child writes 7: the COW fault gives the child a copy:');
console.log(`  parent ${show(parent, addr)}, reads ${parent.readU32(addr)}`);
console.log(`  child  ${show(child, addr)}, reads ${child.readU32(addr)}`);
console.log(`frames in use: ${machine.phys.usedRamFrames}`);

parent.writeU32(addr, 43);
console.log(`parent writes 43: its page is its own again, so it is reused, not copied: ${show(parent, addr)}, reads ${parent.readU32(addr)}`);

child.exit();
parent.exit();
console.log(`both exited: frames in use: ${machine.phys.usedRamFrames}`);
