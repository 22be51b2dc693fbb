// Saving what the page made: a Blob (or a disk-backed File) through a temporary object URL, and CSV text.

/** Save `blob` as file `name` (the browser's download). The URL lives a minute: long enough to start reading. */
export function downloadBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  Object.assign(document.createElement('a'), { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** RFC 4180 CSV: a header row, every field quoted, CRLF line ends. */
export function csv<C extends string>(columns: readonly C[], rows: readonly Partial<Record<C, unknown>>[]): string {
  const q = (v: unknown) => `"${String(v ?? '').replace(/"/g, '""')}"`;
  return [columns.join(','), ...rows.map((r) => columns.map((c) => q(r[c])).join(','))].join('\r\n') + '\r\n';
}
