// Sizes and user-visible constants (x86-64 values).

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/**
 * The kernel's PAGE_MASK, ~(PAGE_SIZE - 1). Addresses exceed 32 bits and JS bitwise
 * operators work on 32: align an address with pageAlignDown / pageAlignUp, not `& PAGE_MASK`.
 */
export const PAGE_MASK = ~(PAGE_SIZE - 1);
export const PTRS_PER_TABLE = 512;
export const PMD_SHIFT = 21;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PMD_NR = 512; // pages per PMD leaf
export const PUD_SHIFT = 30;
export const PUD_SIZE = 1024 * 1024 * 1024;
export const PUD_NR = 262144; // pages per PUD leaf
export const HPAGE_PMD_ORDER = 9;
export const HPAGE_PUD_ORDER = 18;

/** Top of user space with 4-level paging (TASK_SIZE_MAX on x86-64). */
export const TASK_SIZE_4LEVEL = 2 ** 47 - PAGE_SIZE;
/** With 5-level paging. */
export const TASK_SIZE_5LEVEL = 2 ** 56 - PAGE_SIZE;

// mmap prot
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

// mmap flags
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
/** MAP_SHARED with its flags validated: an unknown flag is EOPNOTSUPP instead of ignored. */
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_HUGETLB = 0x40000;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_HUGE_SHIFT = 26;
export const MAP_HUGE_MASK = 0x3f;
export const MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT;
export const MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT;

// mremap flags
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// madvise advice
export const MADV_NORMAL = 0;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_PAGEOUT = 21;
export const MADV_COLLAPSE = 25;

export function pageAligned(x: number): boolean {
  return x % PAGE_SIZE === 0;
}
export function pageAlignUp(x: number): number {
  return Math.ceil(x / PAGE_SIZE) * PAGE_SIZE;
}
/** PAGE_ALIGN_DOWN, for addresses of any size. */
export function pageAlignDown(x: number): number {
  return x - (x % PAGE_SIZE);
}
