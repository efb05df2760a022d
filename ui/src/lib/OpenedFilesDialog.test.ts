import { describe, expect, it, vi } from 'vitest';
import { render, screen, fireEvent, waitFor } from '@testing-library/svelte';
import { mockIPC } from '@tauri-apps/api/mocks';
import OpenedFilesDialog from './OpenedFilesDialog.svelte';

const opened = {
  files: ['/home/agent/Downloads/Ana Silva - offer.pdf', '/home/agent/Downloads/front door.jpg'],
  suggestions: [{ contactId: 'ana', contactName: 'Ana Silva', why: 'its name is in the file name' }],
};

describe('OpenedFilesDialog', () => {
  it('offers the suggestion first and hands every file to the chosen client', async () => {
    mockIPC(() => {
      throw new Error('no call expected');
    });
    const onchoose = vi.fn();
    render(OpenedFilesDialog, { opened, onchoose, onclose: () => {} });
    expect(screen.getByRole('heading').textContent).toContain('these 2 files');
    expect(screen.getAllByTestId('opened-file').map((e) => e.textContent)).toEqual([
      'Ana Silva - offer.pdf',
      'front door.jpg',
    ]);
    await fireEvent.click(screen.getByTestId('opened-suggestion'));
    expect(onchoose).toHaveBeenCalledWith('ana', opened.files);
  });

  it('finds any other client by name', async () => {
    const searched: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd !== 'search_contacts') throw new Error(`unexpected ${cmd}`);
      searched.push(args);
      return {
        contacts: [{ id: 'marcus', displayName: 'Marcus Okafor' }],
        matched: 1,
        cachedTotal: 14,
      };
    });
    const onchoose = vi.fn();
    render(OpenedFilesDialog, { opened, onchoose, onclose: () => {} });
    await fireEvent.input(screen.getByTestId('opened-search'), { target: { value: 'marcus' } });
    const found = await screen.findByTestId('opened-contact');
    expect(found.textContent).toBe('Marcus Okafor');
    expect(searched).toEqual([{ query: 'marcus', offset: 0, limit: 8 }]);
    await fireEvent.click(found);
    await waitFor(() => expect(onchoose).toHaveBeenCalledWith('marcus', opened.files));
  });
});
