/**
 * Secret scrubbing shared by the logger and every error message that may echo input.
 * Secrets are registered when configuration is loaded; any later occurrence in a log line is masked.
 */
const secrets = new Set<string>();

const SECRET_KEY = /pass(word)?|secret|api[-_]?key|token|authorization|credential/i;
export const MASK = '***';

export function registerSecret(value: string | undefined | null): void {
  // Very short values would mask ordinary words; real keys and passwords are longer.
  if (value && value.length >= 4) secrets.add(value);
}

export function scrubString(s: string): string {
  let out = s;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  return out.replace(/(Bearer\s+)[^\s"',}]+/gi, `$1${MASK}`);
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A JSON.stringify replacer: masks secret-named fields and registered secret values. */
export function redactReplacer(key: string, value: unknown): unknown {
  if (key && isSecretKey(key) && value !== null && value !== undefined && value !== '') return MASK;
  if (typeof value === 'string') return scrubString(value);
  if (value instanceof Error) {
    return {
      name: value.name,
      message: scrubString(value.message),
      stack: value.stack && scrubString(value.stack),
    };
  }
  return value;
}
