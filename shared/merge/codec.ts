/**
 * JSON with the types a plan carries and JSON lacks: timestamps travel as `{"$date": <ms>}`, so a plan
 * read back from the journal writes exactly the values that were computed (maps, lists, frozen maps and
 * floats are plain JSON already).
 */
import type { WriteOp } from '#shared/merge/types.ts';

const DATE = '$date';

export function encodePlan(ops: WriteOp[]): string {
  return JSON.stringify(ops, function replacer(this: Record<string, unknown>, key: string, value: unknown) {
    // JSON.stringify calls Date#toJSON before the replacer sees the value, so read the raw one.
    const raw = key === '' ? value : this[key];
    return raw instanceof Date ? { [DATE]: raw.getTime() } : value;
  });
}

export function decodePlan(text: string): WriteOp[] {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      const ms = (value as Record<string, unknown>)[DATE];
      if (keys.length === 1 && typeof ms === 'number') return new Date(ms);
    }
    return value;
  }) as WriteOp[];
}
