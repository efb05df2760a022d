import type { Attachment } from './bindings/Attachment';

export function humanSize(bytes: number | null): string {
  if (bytes === null || bytes === undefined) return '';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const TYPE_NAMES: Record<string, string> = {
  pdf: 'PDF document',
  doc: 'Word document',
  docx: 'Word document',
  dotx: 'Word template',
  xls: 'Excel workbook',
  xlsx: 'Excel workbook',
  xltx: 'Excel template',
  ppt: 'PowerPoint',
  pptx: 'PowerPoint',
  ppsx: 'PowerPoint show',
  potx: 'PowerPoint template',
  csv: 'CSV table',
  jpg: 'JPEG image',
  jpeg: 'JPEG image',
  png: 'PNG image',
  gif: 'GIF image',
  heic: 'HEIC image',
};

/** A plain-words type for the card ("PDF document"), from the extension, else the MIME type. */
export function typeLabel(a: Attachment): string {
  const known = TYPE_NAMES[a.extension];
  if (known) return known;
  if (a.kind === 'image') return 'Image';
  return a.extension ? `${a.extension.toUpperCase()} file` : a.mimeType || 'File';
}

/** Colour family for the document icon, so a PDF and a spreadsheet differ at a glance. */
export function iconTone(extension: string): 'pdf' | 'word' | 'sheet' | 'slides' | 'other' {
  if (extension === 'pdf') return 'pdf';
  if (['doc', 'docx', 'dotx', 'rtf', 'odt'].includes(extension)) return 'word';
  if (['xls', 'xlsx', 'xltx', 'csv', 'ods'].includes(extension)) return 'sheet';
  if (['ppt', 'pptx', 'ppsx', 'potx', 'odp'].includes(extension)) return 'slides';
  return 'other';
}

export function initials(name: string): string {
  const words = name.split(/\s+/).filter((w) => /\p{L}/u.test(w));
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => [...w][0]?.toUpperCase() ?? '').join('') || '?';
}

/** "12 s", "3 min", "1 h 5 min": how long an upload has left. */
export function duration(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  const h = Math.floor(seconds / 3600);
  return `${h} h ${Math.round((seconds - h * 3600) / 60)} min`;
}

/** A glob that files names like this one: digit runs (dates, counters) become `*`, and a name
 *  without digits matches anything around its stem. "IMG_0042.pdf" -> "IMG_*.pdf". */
export function ruleFromName(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  const stem = dot > 0 ? fileName.slice(0, dot) : fileName;
  const ext = dot > 0 ? fileName.slice(dot) : '';
  const escaped = stem.replace(/[[\]{}?*\\]/g, '?');
  if (/\d/.test(escaped)) return escaped.replace(/\d+/g, '*').replace(/\*+/g, '*') + ext;
  return `*${escaped}*${ext}`;
}
