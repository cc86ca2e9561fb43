/**
 * Sunbird's text dates (`createddate`, `updateddate`, `lastupdatedtime`, …), stored as text in the
 * Java pattern `yyyy-MM-dd HH:mm:ss:SSSZ`: read by the merge rules and by drift repair's stale check.
 */

const TEXT_DATE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}):(\d{3})([+-])(\d{2})(\d{2})$/;

/**
 * Parses Sunbird's text dates, Java pattern `yyyy-MM-dd HH:mm:ss:SSSZ` (`Z` = RFC 822 offset, `+0530`).
 * Returns epoch ms, or undefined when the text does not match or names an impossible date.
 */
export function parseTextDate(text: string): number | undefined {
  const m = TEXT_DATE.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, ms, sign, oh, om] = m.slice(1).map((p, i) => (i === 7 ? p : Number(p))) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    string,
    number,
    number,
  ];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 || oh > 23 || om > 59) return undefined;
  const local = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const check = new Date(local);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return undefined;
  const offset = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  return local - offset;
}
