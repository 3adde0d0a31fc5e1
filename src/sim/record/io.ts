// Records on disk (Node): gzip for the columns, JSON for the document.

import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Compress } from './columns.js';
import { CHECK_FORMAT, type CheckTraceDoc, RECORD_FORMAT, type RecordDoc } from './format.js';
import { type DecodedRecord, decodeRecord } from './replay.js';

/** Gzip for single columns (RecorderOptions.compress): smaller records that decode slower in a browser. */
export const gzipColumns: Compress = (bytes) => gzipSync(bytes, { level: 6 });

/** Whether bytes are gzip (RFC 1952 magic). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Write a record as JSON; gzip-compressed when the name ends in .gz (about a sixth of the
 * size; `hmmsim view` serves it compressed and the browser inflates it natively). Returns the
 * bytes written.
 */
export function writeRecord(path: string, doc: RecordDoc | CheckTraceDoc): number {
  const text = JSON.stringify(doc);
  const bytes = path.endsWith('.gz') ? gzipSync(text, { level: 6 }) : Buffer.from(text);
  writeFileSync(path, bytes);
  return bytes.length;
}

/** A record file's JSON text (inflated if it is gzip, whatever its name). */
export function readRecordText(path: string): string {
  const bytes = readFileSync(path);
  return (isGzip(bytes) ? gunzipSync(bytes) : bytes).toString('utf8');
}

/** Read a record or a check trace, checking its format tag. */
export function readRecordFile(path: string): RecordDoc | CheckTraceDoc {
  const doc = JSON.parse(readRecordText(path)) as { format?: unknown };
  if (doc.format !== RECORD_FORMAT && doc.format !== CHECK_FORMAT) {
    throw new Error(`${path} is not an hmmsim record (format ${JSON.stringify(doc.format)})`);
  }
  return doc as RecordDoc | CheckTraceDoc;
}

export function decodeRecordNode(doc: RecordDoc): Promise<DecodedRecord> {
  return decodeRecord(doc, (b) => new Uint8Array(gunzipSync(b)));
}
