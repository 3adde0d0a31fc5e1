// Page-table entry accessors (src/mm/pagetable.ts) and the frame table's field list
// (src/mm/page.ts): every kind predicate answers for its kind alone, the pte_mk* helpers
// change only their bit, and the frame table's growth and reset follow its field list.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  E_DIRTY, E_PROTNONE, E_SOFT_DIRTY, E_SPECIAL, E_UFFD_WP, E_WRITE, E_YOUNG, entryKind, entryWithKind, isDeviceExclusiveEntry,
  isDevicePrivateEntry, isHwpoisonEntry, isLeafEntry, isMigrationEntry, isSwapEntry, isTableEntry, K_BAD, K_DEVICE_EXCLUSIVE,
  K_DEVICE_PRIVATE, K_HWPOISON, K_MIGRATION, K_NONE, K_PRESENT, K_SWAP, K_TABLE, LEVEL_ORDER, LEVEL_PAGES, mkMigrationEntry, pteClearProtnone,
  pteDirty, pteMkaccessed, pteMkclean, pteMkwrite, pteMkwriteDirty, pteNone, ptePresent, pteProtnone, pteSpecial, pteWrite,
  pteWrprotect, pteYoung, restoreExclusivePte, type EntryKind,
} from '../../src/mm/pagetable.js';
import { BYTES_PER_FRAME, FRAME_FIELDS, Frames } from '../../src/mm/page.js';
import { HPAGE_PMD_ORDER, HPAGE_PUD_ORDER, PAGE_MASK, PAGE_SIZE, pageAlignDown } from '../../src/mm/constants.js';
import { WALK_RESTART, WALK_SKIP, WALK_SLEEP } from '../../src/hmm/walk.js';

const KINDS: EntryKind[] = [K_NONE, K_TABLE, K_PRESENT, K_SWAP, K_MIGRATION, K_DEVICE_PRIVATE, K_DEVICE_EXCLUSIVE, K_HWPOISON, K_BAD];
const BITS = [E_WRITE, E_DIRTY, E_YOUNG, E_SPECIAL, E_PROTNONE, E_SOFT_DIRTY, E_UFFD_WP];
const anyBits = fc.subarray(BITS).map((bs) => bs.reduce((a, b) => a | b, 0));

describe('entry accessors (pte_present, is_migration_entry, pte_write ...)', () => {
  it('each kind predicate is true for its kind alone, whatever the bits', () => {
    fc.assert(fc.property(fc.constantFrom(...KINDS), anyBits, (kind, bits) => {
      const f = kind | bits;
      expect(entryKind(f)).toBe(kind);
      expect(pteNone(f)).toBe(kind === K_NONE);
      expect(ptePresent(f)).toBe(kind === K_PRESENT);
      expect(isTableEntry(f)).toBe(kind === K_TABLE);
      expect(isLeafEntry(f)).toBe(kind !== K_NONE && kind !== K_TABLE);
      expect(isSwapEntry(f)).toBe(kind === K_SWAP);
      expect(isMigrationEntry(f)).toBe(kind === K_MIGRATION);
      expect(isDevicePrivateEntry(f)).toBe(kind === K_DEVICE_PRIVATE);
      expect(isDeviceExclusiveEntry(f)).toBe(kind === K_DEVICE_EXCLUSIVE);
      expect(isHwpoisonEntry(f)).toBe(kind === K_HWPOISON);
      expect(pteWrite(f)).toBe((bits & E_WRITE) !== 0);
      expect(pteDirty(f)).toBe((bits & E_DIRTY) !== 0);
      expect(pteYoung(f)).toBe((bits & E_YOUNG) !== 0);
      expect(pteSpecial(f)).toBe((bits & E_SPECIAL) !== 0);
      expect(pteProtnone(f)).toBe((bits & E_PROTNONE) !== 0);
    }));
  });

  it('the pte_mk* helpers set or clear their own bits and keep the kind and every other bit', () => {
    fc.assert(fc.property(fc.constantFrom(...KINDS), anyBits, (kind, bits) => {
      const f = kind | bits;
      expect(pteMkwrite(f)).toBe(f | E_WRITE);
      expect(pteWrprotect(f)).toBe(f & ~E_WRITE);
      expect(pteMkclean(f)).toBe(f & ~E_DIRTY);
      expect(pteMkaccessed(f, false)).toBe(f | E_YOUNG);
      expect(pteMkaccessed(f, true)).toBe(f | E_YOUNG | E_DIRTY);
      expect(pteMkwriteDirty(f)).toBe(f | E_WRITE | E_DIRTY | E_YOUNG);
      expect(pteClearProtnone(f)).toBe(f & ~E_PROTNONE);
      expect(entryWithKind(f, K_DEVICE_EXCLUSIVE)).toBe(K_DEVICE_EXCLUSIVE | bits);
    }));
  });

  it('make_migration_entry keeps dirty, young, soft-dirty and uffd-wp; restore_exclusive_pte keeps write, dirty and special and is young', () => {
    const f = K_PRESENT | E_WRITE | E_DIRTY | E_YOUNG | E_SPECIAL | E_SOFT_DIRTY | E_PROTNONE;
    expect(mkMigrationEntry(f, false)).toBe(K_MIGRATION | E_DIRTY | E_YOUNG | E_SOFT_DIRTY);
    expect(mkMigrationEntry(f, true)).toBe(K_MIGRATION | E_WRITE | E_DIRTY | E_YOUNG | E_SOFT_DIRTY);
    expect(restoreExclusivePte(K_DEVICE_EXCLUSIVE | E_WRITE | E_SOFT_DIRTY)).toBe(K_PRESENT | E_WRITE | E_YOUNG);
  });

  it('named orders, the kernel PAGE_MASK, distinct walk codes', () => {
    expect(LEVEL_ORDER.slice(0, 3)).toEqual([0, HPAGE_PMD_ORDER, HPAGE_PUD_ORDER]);
    for (let l = 0; l < 5; l++) expect(2 ** LEVEL_ORDER[l]!).toBe(LEVEL_PAGES[l]);
    expect(PAGE_MASK).toBe(~(PAGE_SIZE - 1));
    expect(0x12345 & PAGE_MASK).toBe(0x12000);
    expect(pageAlignDown(2 ** 46 + 5 * PAGE_SIZE + 7)).toBe(2 ** 46 + 5 * PAGE_SIZE);
    expect(new Set([WALK_RESTART, WALK_SLEEP, WALK_SKIP]).size).toBe(3);
  });
});

describe('the frame table follows its field list', () => {
  const names = Object.keys(FRAME_FIELDS) as (keyof typeof FRAME_FIELDS)[];

  it('BYTES_PER_FRAME is the sum of the fields; a new table holds every field at its initial value', () => {
    expect(BYTES_PER_FRAME).toBe(names.reduce((n, k) => n + FRAME_FIELDS[k].type.BYTES_PER_ELEMENT, 0));
    const f = new Frames(8);
    for (const k of names) {
      expect(f[k]).toBeInstanceOf(FRAME_FIELDS[k].type);
      expect([...f[k]]).toEqual(new Array(8).fill(FRAME_FIELDS[k].initial));
    }
  });

  it('grow keeps every field of every frame; reset puts back exactly the fields reset on free', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 1, max: 4 }), (pfn, n) => {
      const f = new Frames(16);
      for (const k of names) for (let i = 0; i < 16; i++) f[k][i] = i + 3;
      const g = f.grow(40);
      for (const k of names) {
        expect([...g[k].subarray(0, 16)]).toEqual([...f[k]]);
        expect(g[k][39]).toBe(FRAME_FIELDS[k].initial);
      }
      const end = Math.min(16, pfn + n);
      g.reset(pfn, end - pfn);
      for (const k of names) {
        for (let i = 0; i < 16; i++) {
          const freed = i >= pfn && i < end && FRAME_FIELDS[k].resetOnFree;
          expect(g[k][i]).toBe(freed ? FRAME_FIELDS[k].initial : i + 3);
        }
      }
    }), { numRuns: 50 });
  });

  it('init writes every field of exactly its frames with the initial value (memmap_init_zone_device)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 1, max: 4 }), (pfn, n) => {
      const f = new Frames(16);
      for (const k of names) for (let i = 0; i < 16; i++) f[k][i] = i + 3;
      const end = Math.min(16, pfn + n);
      f.init(pfn, end - pfn);
      for (const k of names) for (let i = 0; i < 16; i++) expect(f[k][i]).toBe(i >= pfn && i < end ? FRAME_FIELDS[k].initial : i + 3);
    }), { numRuns: 50 });
  });
});
