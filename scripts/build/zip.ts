/**
 * A small, reproducible zip writer for SyncBin.zip: deflated entries, Unix permissions (so `unzip` restores
 * the executable bits), one fixed timestamp and the given order, hence byte-identical output for the same
 * inputs. No zip64: every entry and the archive stay below 4 GiB (checked).
 */
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: Buffer;
  /** Unix permission bits, e.g. 0o755. */
  mode: number;
}

const MAX = 0xffffffff;
const UNIX_REGULAR_FILE = 0o100000;
const VERSION = 20; // 2.0: deflate
const MADE_BY_UNIX = (3 << 8) | VERSION;

/** MS-DOS date and time fields (2-second resolution, read as UTC). */
function dosDateTime(date: Date): { time: number; day: number } {
  const year = Math.max(1980, date.getUTCFullYear());
  return {
    time: (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | Math.floor(date.getUTCSeconds() / 2),
    day: ((year - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate(),
  };
}

/** The fields shared by an entry's local header and its central directory record, from "version needed". */
function commonFields(
  e: { crc: number; size: number; deflated: number },
  when: ReturnType<typeof dosDateTime>,
) {
  const b = Buffer.alloc(22);
  b.writeUInt16LE(VERSION, 0);
  b.writeUInt16LE(0, 2); // flags: names are ASCII, sizes known up front
  b.writeUInt16LE(8, 4); // deflate
  b.writeUInt16LE(when.time, 6);
  b.writeUInt16LE(when.day, 8);
  b.writeUInt32LE(e.crc, 10);
  b.writeUInt32LE(e.deflated, 14);
  b.writeUInt32LE(e.size, 18);
  return b;
}

export function zip(entries: ZipEntry[], modified: Date): Buffer {
  const when = dosDateTime(modified);
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    if (!/^[\x20-\x7e]+$/.test(entry.name)) throw new Error(`zip: entry name must be ASCII: ${entry.name}`);
    const name = Buffer.from(entry.name, 'ascii');
    const body = deflateRawSync(entry.data, { level: 9 });
    const info = { crc: crc32(entry.data), size: entry.data.length, deflated: body.length };
    if (info.size > MAX || info.deflated > MAX) throw new Error(`zip: ${entry.name} is too large`);
    const fields = commonFields(info, when);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    fields.copy(local, 4);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28); // no extra field
    parts.push(local, name, body);

    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(MADE_BY_UNIX, 4);
    fields.copy(record, 6);
    record.writeUInt16LE(name.length, 28);
    // extra length, comment length, disk number, internal attributes: all 0
    record.writeUInt32LE(((UNIX_REGULAR_FILE | entry.mode) << 16) >>> 0, 38);
    record.writeUInt32LE(offset, 42);
    central.push(record, name);

    offset += local.length + name.length + body.length;
    if (offset > MAX) throw new Error('zip: archive too large');
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}
