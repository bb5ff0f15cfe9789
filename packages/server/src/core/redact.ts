/**
 * What is kept from display (config `Redact.*`): the values of secret-bearing branch headers are shown as `***`
 * wherever a transaction is shown (query, all, logs, alerts, spans); the stored values stay real, as the branches
 * need them.
 *
 * @module
 */

/** The mask shown instead of a secret value. */
export const MASK = '***';

/** Header names always masked, whatever `Redact.Headers` adds. */
export const ALWAYS_MASKED: readonly string[] = ['authorization', 'cookie', 'proxy-authorization'];

/** Masks header values by name, case-insensitively. Built once from the configuration. */
export class HeaderRedactor {
  private readonly names: ReadonlySet<string>;

  constructor(extra: readonly string[] = []) {
    this.names = new Set([...ALWAYS_MASKED, ...extra.map((n) => n.trim().toLowerCase()).filter((n) => n !== '')]);
  }

  /** From `Redact.Headers` (comma-separated). */
  static fromConfig(headers: string): HeaderRedactor {
    return new HeaderRedactor(headers.split(','));
  }

  /** Whether a header of this name is masked. */
  masks(name: string): boolean {
    return this.names.has(name.toLowerCase());
  }

  /** `headers` itself when nothing in it is masked, else a copy with the masked values replaced. */
  headers(headers: Record<string, string>): Record<string, string> {
    let out: Record<string, string> | undefined;
    for (const k of Object.keys(headers)) {
      if (!this.masks(k)) continue;
      out ??= { ...headers };
      out[k] = MASK;
    }
    return out ?? headers;
  }

  /**
   * A JSON text holding a `headers` object of its own (ext_data's legacy passthrough) or a `branch_headers`
   * object (the options text), with the masked values replaced; any other text unchanged.
   */
  jsonText(text: string, key: 'headers' | 'branch_headers'): string {
    if (text === '' || !text.includes('"')) return text;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return text;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return text;
    const h = (v as Record<string, unknown>)[key];
    if (!h || typeof h !== 'object' || Array.isArray(h)) return text;
    let changed = false;
    const masked: Record<string, unknown> = { ...(h as Record<string, unknown>) };
    for (const k of Object.keys(masked)) {
      if (this.masks(k)) {
        masked[k] = MASK;
        changed = true;
      }
    }
    if (!changed) return text;
    return JSON.stringify({ ...(v as Record<string, unknown>), [key]: masked });
  }
}

/** The redactor of an unconfigured coordinator: Authorization, Cookie and Proxy-Authorization. */
export const DEFAULT_REDACTOR = new HeaderRedactor();
