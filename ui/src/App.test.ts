import { describe, expect, it, vi } from 'vitest';
import { render, screen, within, fireEvent, waitFor } from '@testing-library/svelte';
import { mockIPC, mockConvertFileSrc } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import App from './App.svelte';
import type { UploadView } from './lib/bindings/UploadView';
import type { QueueReport } from './lib/bindings/QueueReport';
import type { Attachment } from './lib/bindings/Attachment';
import type { Contact } from './lib/bindings/Contact';
import type { InboxItem } from './lib/bindings/InboxItem';

const contact = (id: string, displayName: string, email: string, phone: string): Contact => ({
  id,
  displayName,
  firstName: displayName.split(' ')[0],
  lastName: displayName.split(' ')[1] ?? null,
  email,
  phone,
  company: null,
  address: '1450 Lombard Street, San Francisco',
  createdAt: null,
});

const CONTACTS = [
  contact('c1', 'Ana Silva', 'ana.silva@example.com', '+1 415 555 0132'),
  contact('c2', 'Marcus Okafor', 'marcus.okafor@example.com', '+1 510 555 0178'),
  contact('c3', 'Chloé Dubois', 'chloe.dubois@example.fr', '+1 650 555 0119'),
];

const ATTACHMENTS: Attachment[] = [
  {
    id: 'a1', contactId: 'c1', fileName: 'Front elevation.jpg', mimeType: 'image/jpeg', kind: 'image',
    extension: 'jpg', sizeBytes: 242_000, fileUrl: 'http://x/f', previewUrl: 'http://x/p', createdAt: null,
  },
  {
    id: 'a2', contactId: 'c1', fileName: 'Purchase Agreement.pdf', mimeType: 'application/pdf', kind: 'document',
    extension: 'pdf', sizeBytes: 2600, fileUrl: 'http://x/d', previewUrl: null, createdAt: null,
  },
  {
    id: 'a3', contactId: 'c1', fileName: 'Inspection notes.docx', kind: 'document',
    mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    extension: 'docx', sizeBytes: 9000, fileUrl: 'http://x/n', previewUrl: null, createdAt: null,
  },
];

type Handler = (cmd: string, args: Record<string, unknown>) => unknown;

function backend(overrides: Record<string, Handler> = {}) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  const handlers: Record<string, Handler> = {
    app_status: () => ({
      account: { name: 'demo', kind: 'demo', label: 'Demo site', baseUrl: 'http://127.0.0.1:1', siteId: 's' },
      capabilities: { documents: false, mediaManager: true, webhooks: true, serverThumbnails: true },
      contactsCached: true,
    }),
    search_contacts: (_c, args) => {
      const q = String(args.query).toLowerCase();
      const all = CONTACTS.filter((c) => c.displayName.toLowerCase().startsWith(q) || (c.email ?? '').includes(q));
      const offset = Number(args.offset);
      const contacts = all.slice(offset, offset + Number(args.limit));
      return { contacts, offset, matched: all.length, cachedTotal: CONTACTS.length };
    },
    refresh_contacts: () => CONTACTS.length,
    list_attachments: (_c, args) => ATTACHMENTS.filter((a) => a.contactId === args.contactId),
    list_uploads: () => [],
    inbox_state: () => ({ settings: { folders: [], after: 'move', rules: [] }, items: [], watching: false, problem: null }),
    desktop_state: () => ({
      settings: {
        closeToTray: true,
        closeHintShown: false,
        startAtLogin: false,
        notify: { batches: true, needsFiling: true, failures: true, loginRefused: true },
        uploadsPaused: false,
        watchingPaused: false,
      },
      status: { uploading: 0, waiting: 0, needsFiling: 0, problem: null, uploadsPaused: false, watchingPaused: false },
    }),
    take_opened_files: () => ({ files: [], suggestions: [] }),
    ...overrides,
  };
  mockConvertFileSrc('linux');
  mockIPC((cmd, args) => {
    calls.push({ cmd, args: (args ?? {}) as Record<string, unknown> });
    const handler = handlers[cmd];
    if (!handler) throw new Error(`unexpected command ${cmd}`);
    return handler(cmd, (args ?? {}) as Record<string, unknown>);
  }, { shouldMockEvents: true });
  return calls;
}

describe('App', () => {
  it('says it is on the Demo site and lists the contacts', async () => {
    backend();
    render(App);
    expect(await screen.findByText(/Demo site — local, nothing leaves this computer/)).toBeTruthy();
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    expect(screen.getByText('marcus.okafor@example.com')).toBeTruthy();
  });

  it('renders only the rows in view and fetches pages as the list scrolls', async () => {
    const many = Array.from({ length: 1000 }, (_, i) =>
      contact(`m${i}`, `Client ${String(i).padStart(4, '0')}`, `c${i}@example.com`, `+1 555 ${i}`),
    );
    const calls = backend({
      search_contacts: (_c, args) => {
        const offset = Number(args.offset);
        return { contacts: many.slice(offset, offset + Number(args.limit)), offset, matched: 1000, cachedTotal: 1000 };
      },
    });
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row').length).toBeGreaterThan(5));
    expect(screen.getAllByTestId('contact-row').length).toBeLessThan(30);
    expect(screen.getByTestId('contact-count').textContent).toContain('1,000 contacts');
    const offsets = () => calls.filter((c) => c.cmd === 'search_contacts').map((c) => c.args.offset);
    expect(offsets()).not.toContain(600);

    const list = screen.getByTestId('contact-list');
    // jsdom has no layout, so scrollTop is a plain value here.
    Object.defineProperty(list, 'scrollTop', { value: 650 * 56, writable: true, configurable: true });
    await fireEvent.scroll(list);
    await waitFor(() => expect(screen.getByText('Client 0650')).toBeTruthy());
    expect(offsets()).toContain(600);
    expect(screen.getAllByTestId('contact-row').length).toBeLessThan(30);
  });

  it('narrows the list as the user types', async () => {
    const calls = backend();
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    await fireEvent.input(screen.getByTestId('contact-search'), { target: { value: 'chl' } });
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(1));
    expect(screen.getByTestId('contact-row').textContent).toContain('Chloé Dubois');
    expect(calls.some((c) => c.cmd === 'search_contacts' && c.args.query === 'chl')).toBe(true);
  });

  it('shows a contact’s documents: thumbnails for images and PDF first pages, a type icon for the rest', async () => {
    backend();
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    await fireEvent.click(screen.getAllByTestId('contact-row')[0]);
    await waitFor(() => expect(screen.getAllByTestId('attachment-card')).toHaveLength(3));
    const [image, pdf, docx] = screen.getAllByTestId('attachment-card');
    const img = within(image).getByTestId('attachment-thumbnail') as HTMLImageElement;
    expect(img.src).toBe('thumb://localhost/c1%2Fa1?size=256');
    const page = within(pdf).getByTestId('attachment-thumbnail') as HTMLImageElement;
    expect(page.src).toBe('thumb://localhost/c1%2Fa2?size=256');
    expect(page.dataset.thumbKind).toBe('page');
    expect(pdf.textContent).toContain('PDF document');
    expect(pdf.textContent).toContain('2.5 KB');
    expect(within(docx).getByTestId('file-icon')).toBeTruthy();
  });

  it('shows a larger preview on Space (Quick Look) and closes it on Escape', async () => {
    backend();
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    await fireEvent.click(screen.getAllByTestId('contact-row')[0]);
    await waitFor(() => expect(screen.getAllByTestId('attachment-card')).toHaveLength(3));
    const pdfPreview = screen.getAllByTestId('attachment-preview')[1];
    await fireEvent.keyDown(pdfPreview, { key: ' ' });
    const look = await screen.findByTestId('quick-look');
    expect((within(look).getByTestId('quick-look-image') as HTMLImageElement).src).toBe('thumb://localhost/c1%2Fa2?size=1024');
    expect(look.textContent).toContain('Purchase Agreement.pdf');
    await fireEvent.keyDown(window, { key: 'Escape' });
    await waitFor(() => expect(screen.queryByTestId('quick-look')).toBeNull());
  });

  it('falls back to the type icon when a thumbnail fails to load', async () => {
    backend();
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    await fireEvent.click(screen.getAllByTestId('contact-row')[0]);
    await waitFor(() => expect(screen.getAllByTestId('attachment-thumbnail')).toHaveLength(2));
    for (const img of screen.getAllByTestId('attachment-thumbnail')) await fireEvent.error(img);
    await waitFor(() => expect(screen.queryByTestId('attachment-thumbnail')).toBeNull());
    expect(screen.getAllByTestId('file-icon')).toHaveLength(3);
  });

  it('moves through contacts with the arrow keys and focuses search with /', async () => {
    backend();
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    const search = screen.getByTestId('contact-search');
    await fireEvent.keyDown(window, { key: '/' });
    expect(document.activeElement).toBe(search);
    await fireEvent.keyDown(search, { key: 'ArrowDown' });
    const listbox = screen.getByTestId('contact-list');
    expect(document.activeElement).toBe(listbox);
    await waitFor(() => expect(screen.getByTestId('contact-name').textContent).toBe('Ana Silva'));
    await fireEvent.keyDown(listbox, { key: 'ArrowDown' });
    await waitFor(() => expect(screen.getByTestId('contact-name').textContent).toBe('Marcus Okafor'));
    await fireEvent.keyDown(listbox, { key: 'End' });
    await waitFor(() => expect(screen.getByTestId('contact-name').textContent).toBe('Chloé Dubois'));
  });

  it('branches on the error code, not the message', async () => {
    backend({
      refresh_contacts: () => {
        throw { code: 'UNAVAILABLE', message: 'connection refused' };
      },
    });
    render(App);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('cannot be reached right now');
    expect(alert.textContent).toContain('connection refused');
  });

  it('still offers Accounts when the current account cannot open', async () => {
    backend({
      app_status: () => {
        throw { code: 'KEYRING_LOCKED', message: 'the system keyring is locked' };
      },
      list_accounts: () => ({ current: 'office', accounts: [] }),
    });
    render(App);
    await screen.findByRole('alert');
    await fireEvent.click(screen.getByTestId('account'));
    expect(await screen.findByTestId('accounts-dialog')).toBeTruthy();
  });

  it('says plainly when no application opens a file type', async () => {
    backend({
      open_attachment: () => {
        throw { code: 'NO_APPLICATION', message: 'no application opens /cache/x.csv' };
      },
    });
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    await fireEvent.click(screen.getAllByTestId('contact-row')[0]);
    await waitFor(() => expect(screen.getAllByTestId('attachment-card')).toHaveLength(3));
    await fireEvent.click(screen.getAllByTestId('open')[1]);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('use “Save as…” instead');
    expect(alert.textContent).not.toContain('cannot be reached');
  });

  it('passes the attachment ids to Save as and reports where it saved', async () => {
    const save = vi.fn(() => '/home/agent/Agreement.pdf');
    const calls = backend({ save_attachment_as: save });
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    await fireEvent.click(screen.getAllByTestId('contact-row')[0]);
    await waitFor(() => expect(screen.getAllByTestId('attachment-card')).toHaveLength(3));
    await fireEvent.click(screen.getAllByTestId('save-as')[1]);
    expect(await screen.findByText(/Saved Purchase Agreement.pdf to \/home\/agent\/Agreement.pdf/)).toBeTruthy();
    const call = calls.find((c) => c.cmd === 'save_attachment_as');
    expect(call?.args).toEqual({ contactId: 'c1', attachmentId: 'a2', fileName: 'Purchase Agreement.pdf' });
  });

  it('queues files dropped on a contact row, shows them in the tray, retries a failure and cancels', async () => {
    const job = (id: number, state: UploadView['state'], extra: Partial<UploadView> = {}): UploadView => ({
      id, contactId: 'c2', contactName: 'Marcus Okafor', fileName: `doc${id}.pdf`, path: `/in/doc${id}.pdf`,
      mimeType: 'application/pdf', size: 2_000_000, state, sent: 0, bytesPerSecond: null, secondsLeft: null,
      attachmentId: null, error: null, attempts: 0, ...extra,
    });
    const queued: QueueReport = { queued: [job(1, 'queued'), job(2, 'queued')], alreadyQueued: [], alreadyAttached: [], rejected: [] };
    const calls = backend({
      queue_files: () => queued, retry_upload: () => true, cancel_upload: () => true, cancel_all_uploads: () => 1,
    });
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    const marcus = screen.getAllByTestId('contact-row')[1];
    document.elementFromPoint = () => marcus; // jsdom has no layout
    (window as unknown as { attacheDrop: (p: string[], x: number, y: number) => void }).attacheDrop(
      ['/in/doc1.pdf', '/in/doc2.pdf'], 40, 120);
    await waitFor(() => expect(calls.some((c) => c.cmd === 'queue_files')).toBe(true));
    const call = calls.find((c) => c.cmd === 'queue_files')!;
    expect(call.args).toMatchObject({ contactId: 'c2', paths: ['/in/doc1.pdf', '/in/doc2.pdf'], force: false });

    await emit('uploads', {
      jobs: [job(1, 'sending', { sent: 1_000_000, bytesPerSecond: 500_000, secondsLeft: 2 }),
             job(2, 'failed', { error: { code: 'UNAVAILABLE', message: 'Wix could not be reached' } })],
      active: 1, waiting: 0, finishedBatch: null,
    });
    const rows = await screen.findAllByTestId('upload-row');
    expect(rows).toHaveLength(2);
    expect(rows[1].textContent).toContain('Uploading');
    expect(rows[1].textContent).toContain('2 s left');
    expect(screen.getByTestId('upload-reason').textContent).toBe('Wix could not be reached');
    await fireEvent.click(screen.getByTestId('upload-retry'));
    await waitFor(() => expect(calls.find((c) => c.cmd === 'retry_upload')?.args).toMatchObject({ id: 2 }));
    // One file, or everything still on its way.
    await fireEvent.click(screen.getByRole('button', { name: 'Cancel doc1.pdf' }));
    await waitFor(() => expect(calls.find((c) => c.cmd === 'cancel_upload')?.args).toMatchObject({ id: 1 }));
    await fireEvent.click(screen.getByTestId('upload-cancel-all'));
    await waitFor(() => expect(calls.some((c) => c.cmd === 'cancel_all_uploads')).toBe(true));

    await emit('uploads', { jobs: [job(1, 'done'), job(2, 'done')], active: 0, waiting: 0,
      finishedBatch: { attached: 2, failed: 0, cancelled: 0 } });
    expect((await screen.findByTestId('notice')).textContent).toContain('2 files attached');
  });

  it('says why files were refused and offers to attach a duplicate again', async () => {
    const already: UploadView = {
      id: 7, contactId: 'c1', contactName: 'Ana Silva', fileName: 'Deed.pdf', path: '/in/Deed.pdf',
      mimeType: 'application/pdf', size: 10, state: 'done', sent: 10, bytesPerSecond: null, secondsLeft: null,
      attachmentId: 'a9', error: null, attempts: 1,
    };
    let n = 0;
    const calls = backend({
      queue_files: () => (n++ === 0
        ? { queued: [], alreadyQueued: [], alreadyAttached: [already], rejected: [] }
        : { queued: [], alreadyQueued: [], alreadyAttached: [], rejected: [
            { path: '/in/x.txt', kind: 'unsupported', message: 'Wix does not accept plain text files (x.txt)', convertTo: null }] }),
    });
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    document.elementFromPoint = () => screen.getAllByTestId('contact-row')[0];
    const drop = (window as unknown as { attacheDrop: (p: string[], x: number, y: number) => void }).attacheDrop;
    drop(['/in/Deed.pdf'], 10, 10);
    const notice = await screen.findByTestId('notice');
    expect(notice.textContent).toContain('Already attached to Ana Silva: Deed.pdf');
    await fireEvent.click(screen.getByText('Attach again'));
    await waitFor(() => expect(calls.filter((c) => c.cmd === 'queue_files')[1]?.args).toMatchObject({ force: true }));
    await waitFor(() => expect(screen.getByTestId('notice').textContent).toContain('Wix does not accept plain text files'));
  });

  it('offers to convert a refused image, and converts only when asked', async () => {
    const calls = backend({
      queue_files: () => ({ queued: [], alreadyQueued: [], alreadyAttached: [], rejected: [
        { path: '/in/plan.webp', kind: 'unsupported', message: 'Wix does not accept WebP images (plan.webp); it can be converted to PNG first', convertTo: 'png' },
        { path: '/in/x.txt', kind: 'unsupported', message: 'Wix does not accept plain text files (x.txt)', convertTo: null }] }),
      convert_and_queue: () => ({ queued: [], alreadyQueued: [], alreadyAttached: [], rejected: [] }),
    });
    render(App);
    await waitFor(() => expect(screen.getAllByTestId('contact-row')).toHaveLength(3));
    document.elementFromPoint = () => screen.getAllByTestId('contact-row')[0];
    const drop = (window as unknown as { attacheDrop: (p: string[], x: number, y: number) => void }).attacheDrop;
    drop(['/in/plan.webp', '/in/x.txt'], 10, 10);
    expect((await screen.findByTestId('notice')).textContent).toContain('2 files were not queued');
    expect(calls.some((c) => c.cmd === 'convert_and_queue')).toBe(false);
    await fireEvent.click(screen.getByText('Convert to PNG and attach'));
    await waitFor(() =>
      expect(calls.find((c) => c.cmd === 'convert_and_queue')?.args).toEqual({ contactId: 'c1', paths: ['/in/plan.webp'] }),
    );
  });

  it('lists inbox files to review; a suggestion files one, optionally as a rule, and live events update it', async () => {
    const item = (over: Partial<InboxItem>): InboxItem => ({
      id: 1, inbox: '/home/a/Inbox', path: '/home/a/Inbox/IMG_0042.pdf', fileName: 'IMG_0042.pdf', size: 10,
      modifiedNs: 1, state: 'needsFiling', contactId: null, contactName: null, reason: null, reasonText: null,
      suggestions: [{ contactId: 'c2', contactName: 'Marcus Okafor', why: 'the name holds “okafor”' }],
      jobId: null, filedPath: null, error: null, failures: 0, retryAt: null, updatedAt: 1, ...over,
    });
    const waiting = item({});
    const calls = backend({
      inbox_state: () => ({
        settings: { folders: [{ path: '/home/a/Inbox', poll: null }], after: 'move', rules: [] },
        items: [waiting, item({ id: 2, fileName: 'Deed.pdf', state: 'failed', suggestions: [],
          error: { code: 'UNAVAILABLE', message: 'Wix could not be reached' } })],
        watching: true,
        problem: null,
      }),
      file_inbox_item: () => item({ state: 'uploading', contactId: 'c2', contactName: 'Marcus Okafor' }),
      retry_inbox_item: () => null,
    });
    render(App);
    expect((await screen.findByTestId('inbox-badge')).textContent).toBe('1');
    await fireEvent.click(screen.getByTestId('inbox-button'));
    const panel = await screen.findByTestId('inbox-panel');
    expect(within(panel).getByText('/home/a/Inbox')).toBeTruthy();
    expect(within(panel).getByText('Wix could not be reached')).toBeTruthy();
    await fireEvent.click(within(panel).getByText('Retry'));
    await waitFor(() => expect(calls.some((c) => c.cmd === 'retry_inbox_item' && c.args.id === 2)).toBe(true));

    const review = within(panel).getByTestId('needs-filing');
    await fireEvent.click(within(review).getByRole('checkbox'));
    expect((within(review).getByLabelText('Rule pattern') as HTMLInputElement).value).toBe('IMG_*.pdf');
    await fireEvent.click(within(review).getByText('Marcus Okafor'));
    await waitFor(() =>
      expect(calls.find((c) => c.cmd === 'file_inbox_item')?.args).toEqual({ id: 1, contactId: 'c2', rule: 'IMG_*.pdf' }),
    );
    await waitFor(() => expect(screen.queryByTestId('needs-filing')).toBeNull());
    expect(screen.queryByTestId('inbox-badge')).toBeNull();

    // A file filed by the watcher arrives as an event.
    await emit('inbox', {
      items: [item({ id: 3, fileName: 'Offer.pdf', state: 'filed', contactId: 'c1', contactName: 'Ana Silva',
        reasonText: 'the name holds “Ana Silva”' })],
      settling: 0,
      problems: [],
    });
    await waitFor(() => expect(within(panel).getByTestId('inbox-filed').textContent).toContain('Ana Silva'));
  });

  it('offers "Attach as Document" when the account keeps documents, and asks for documents', async () => {
    const espoStatus = () => ({
      account: { name: 'demo-espo', kind: 'demoEspo', label: 'Demo site (EspoCRM)', baseUrl: 'http://127.0.0.1:1', siteId: null },
      capabilities: { documents: true, mediaManager: false, webhooks: false, serverThumbnails: true },
      contactsCached: true,
    });
    const calls = backend({
      app_status: espoStatus,
      pick_files: () => ({ queued: [], alreadyQueued: [], alreadyAttached: [], rejected: [] }),
    });
    render(App);
    expect(await screen.findByText(/Demo site \(EspoCRM\)/)).toBeTruthy();
    await fireEvent.click((await screen.findAllByTestId('contact-row'))[0]);
    await fireEvent.click(await screen.findByTestId('attach-documents'));
    await waitFor(() => expect(calls.some((c) => c.cmd === 'pick_files')).toBe(true));
    expect(calls.find((c) => c.cmd === 'pick_files')?.args).toEqual({ contactId: 'c1', asDocument: true });
  });

  it('has no "Attach as Document" when the account keeps no documents (Wix)', async () => {
    backend();
    render(App);
    await fireEvent.click((await screen.findAllByTestId('contact-row'))[0]);
    await screen.findByTestId('attach-files');
    expect(screen.queryByTestId('attach-documents')).toBeNull();
  });
});
