import { describe, expect, it } from 'vitest';
import { humanSize, iconTone, initials, ruleFromName, typeLabel } from './format';
import type { Attachment } from './bindings/Attachment';

const attachment = (over: Partial<Attachment>): Attachment => ({
  id: 'a',
  contactId: 'c',
  fileName: 'x',
  mimeType: 'application/octet-stream',
  kind: 'document',
  extension: '',
  sizeBytes: null,
  fileUrl: null,
  previewUrl: null,
  createdAt: null,
  ...over,
});

describe('humanSize', () => {
  it('uses bytes below a kilobyte and one decimal for small values', () => {
    expect(humanSize(0)).toBe('0 B');
    expect(humanSize(1023)).toBe('1023 B');
    expect(humanSize(1536)).toBe('1.5 KB');
    expect(humanSize(250 * 1024)).toBe('250 KB');
    expect(humanSize(5 * 1024 * 1024)).toBe('5.0 MB');
  });
  it('is empty when the size is unknown', () => {
    expect(humanSize(null)).toBe('');
  });
});

describe('typeLabel', () => {
  it('names common types in plain words', () => {
    expect(typeLabel(attachment({ extension: 'pdf' }))).toBe('PDF document');
    expect(typeLabel(attachment({ extension: 'docx' }))).toBe('Word document');
    expect(typeLabel(attachment({ extension: 'xyz' }))).toBe('XYZ file');
    expect(typeLabel(attachment({ extension: '', kind: 'image' }))).toBe('Image');
  });
});

describe('iconTone and initials', () => {
  it('groups extensions by family', () => {
    expect(iconTone('csv')).toBe('sheet');
    expect(iconTone('pptx')).toBe('slides');
    expect(iconTone('zip')).toBe('other');
  });
  it('takes first and last initials, accents included', () => {
    expect(initials('Chloé Dubois')).toBe('CD');
    expect(initials('Ana Maria Silva')).toBe('AS');
    expect(initials('élodie')).toBe('É');
    expect(initials('')).toBe('?');
  });
});

describe('ruleFromName', () => {
  it('turns counters and dates into wildcards', () => {
    expect(ruleFromName('IMG_0042.pdf')).toBe('IMG_*.pdf');
    expect(ruleFromName('scan 2026-11-24 001.pdf')).toBe('scan *-*-* *.pdf');
  });
  it('matches around a name without digits, and defuses glob characters', () => {
    expect(ruleFromName('bennett appraisal.pdf')).toBe('*bennett appraisal*.pdf');
    expect(ruleFromName('a[1]?.pdf')).toBe('a?*??.pdf');
  });
});
