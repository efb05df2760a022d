import { randomFillSync } from 'node:crypto';
import { afterEach } from 'vitest';
import { clearMocks } from '@tauri-apps/api/mocks';
import { cleanup } from '@testing-library/svelte';

// Tauri's IPC mocks draw callback ids from crypto.getRandomValues, which jsdom lacks.
Object.defineProperty(window, 'crypto', {
  value: { getRandomValues: (buffer: Uint8Array) => randomFillSync(buffer) },
  configurable: true,
});

// jsdom has no layout engine: give the virtualized list a real height to fill.
Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => 600 });
Element.prototype.scrollIntoView = function scrollIntoView() {};

afterEach(() => {
  cleanup();
  clearMocks();
});
