// Records on disk (Node): gzip for the columns, JSON for the document.

import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Compress } from './columns.js';
import { CHECK_FORMAT, type CheckTraceDoc, RECORD_FORMAT, type RecordDoc } from './format.js';
import { type DecodedRecord, decodeRecord } from './replay.js';

/** The recorder's column compression: gzip at a level that is fast for a million events. */
export const gzipColumns: Compress = (bytes) => gzipSync(bytes, { level: 6 });

export function writeRecord(path: string, doc: RecordDoc | CheckTraceDoc): number {
  const text = JSON.stringify(doc);
  writeFileSync(path, text);
  return text.length;
}

/** Read a record or a check trace, checking its format tag. */
export function readRecordFile(path: string): RecordDoc | CheckTraceDoc {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { format?: unknown };
  if (doc.format !== RECORD_FORMAT && doc.format !== CHECK_FORMAT) {
    throw new Error(`${path} is not an hmmsim record (format ${JSON.stringify(doc.format)})`);
  }
  return doc as RecordDoc | CheckTraceDoc;
}

export function decodeRecordNode(doc: RecordDoc): Promise<DecodedRecord> {
  return decodeRecord(doc, (b) => new Uint8Array(gunzipSync(b)));
}
