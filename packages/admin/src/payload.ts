/** How the UI shows a branch payload (bin_data, base64): pretty JSON when it parses, else hex. */
export function showPayload(b64: string): { kind: 'json' | 'hex'; text: string } {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    return { kind: 'hex', text: b64 };
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return { kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2) };
  } catch {
    return { kind: 'hex', text: hexDump(bytes) };
  }
}

/** 16 bytes a line: offset, hex. */
export function hexDump(bytes: Uint8Array, max = 4096): string {
  const lines: string[] = [];
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i += 16) {
    const row = Array.from(bytes.subarray(i, Math.min(i + 16, n)), (b) => b.toString(16).padStart(2, '0'));
    lines.push(`${i.toString(16).padStart(6, '0')}  ${row.join(' ')}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join('\n');
}

const SECRET_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** branch_headers with the values of secret headers shown as *** (the server masks them too). */
export function maskHeaders(h: Record<string, string>): [string, string][] {
  return Object.entries(h).map(([k, v]) => [k, SECRET_HEADERS.has(k.toLowerCase()) ? '***' : v]);
}
