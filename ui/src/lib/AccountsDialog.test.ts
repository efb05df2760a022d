import { describe, expect, it, vi } from 'vitest';
import { render, screen, fireEvent, waitFor } from '@testing-library/svelte';
import { mockIPC } from '@tauri-apps/api/mocks';
import AccountsDialog from './AccountsDialog.svelte';

const office = { name: 'office', kind: 'wixApiKey', label: 'office', baseUrl: 'https://www.wixapis.com', siteId: 's-1' };

function backend(handlers: Record<string, (args: Record<string, unknown>) => unknown>) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args: a });
    const h = handlers[cmd];
    if (!h) throw new Error(`unexpected ${cmd}`);
    return h(a);
  });
  return calls;
}

async function fillAndSubmit() {
  await fireEvent.input(screen.getByTestId('wix-name'), { target: { value: 'office' } });
  await fireEvent.input(screen.getByTestId('wix-site-id'), { target: { value: ' s-1 ' } });
  await fireEvent.input(screen.getByTestId('wix-api-key'), { target: { value: 'k3y' } });
  await fireEvent.submit(screen.getByTestId('connect-wix'));
}

describe('AccountsDialog', () => {
  it('connects a Wix site with the form values and reports the change', async () => {
    let accounts: unknown[] = [];
    const calls = backend({
      list_accounts: () => ({ current: accounts.length ? 'office' : 'demo', accounts }),
      connect_wix: () => {
        accounts = [office];
        return office;
      },
    });
    const onchanged = vi.fn();
    render(AccountsDialog, { onchanged, onclose: () => {} });
    await screen.findByTestId('account-demo');
    await fillAndSubmit();
    await waitFor(() => expect(onchanged).toHaveBeenCalledOnce());
    expect(calls.find((c) => c.cmd === 'connect_wix')?.args).toEqual({
      name: 'office',
      siteId: 's-1',
      apiKey: 'k3y',
      baseUrl: 'https://www.wixapis.com',
    });
    await screen.findByTestId('account-item');
    expect((screen.getByTestId('wix-api-key') as HTMLInputElement).value).toBe(''); // the key is not kept in the form
  });

  it('names the remedy when there is no keyring, and changes nothing', async () => {
    backend({
      list_accounts: () => ({ current: 'demo', accounts: [] }),
      connect_wix: () => {
        throw { code: 'KEYRING_UNAVAILABLE', message: 'no system keyring is available; start one' };
      },
    });
    const onchanged = vi.fn();
    render(AccountsDialog, { onchanged, onclose: () => {} });
    await screen.findByTestId('account-demo');
    await fillAndSubmit();
    const alert = await screen.findByTestId('accounts-error');
    expect(alert.textContent).toContain('only in the system keyring');
    expect(onchanged).not.toHaveBeenCalled();
  });

  it('signs out of an account', async () => {
    let accounts: unknown[] = [office];
    const calls = backend({
      list_accounts: () => ({ current: accounts.length ? 'office' : 'demo', accounts }),
      sign_out: () => {
        accounts = [];
        return null;
      },
    });
    const onchanged = vi.fn();
    render(AccountsDialog, { onchanged, onclose: () => {} });
    await fireEvent.click(await screen.findByTestId('sign-out'));
    await waitFor(() => expect(onchanged).toHaveBeenCalledOnce());
    expect(calls.find((c) => c.cmd === 'sign_out')?.args).toEqual({ name: 'office' });
    await waitFor(() => expect(screen.queryByTestId('account-item')).toBeNull());
  });

  it('connects EspoCRM with an HMAC secret, and lists it as EspoCRM', async () => {
    const espo = { name: 'brokerage', kind: 'espoHmac', label: 'brokerage', baseUrl: 'https://crm.example.com', siteId: null };
    let accounts: unknown[] = [];
    const calls = backend({
      list_accounts: () => ({ current: accounts.length ? 'brokerage' : 'demo', accounts }),
      connect_espo: () => {
        accounts = [espo];
        return espo;
      },
    });
    const onchanged = vi.fn();
    render(AccountsDialog, { onchanged, onclose: () => {} });
    await screen.findByTestId('account-demo-espo');
    await fireEvent.click(screen.getByTestId('tab-espo'));
    await fireEvent.input(screen.getByTestId('espo-name'), { target: { value: 'brokerage' } });
    await fireEvent.input(screen.getByTestId('espo-url'), { target: { value: ' https://crm.example.com ' } });
    await fireEvent.input(screen.getByTestId('espo-api-key'), { target: { value: 'k3y' } });
    await fireEvent.click(screen.getByTestId('espo-hmac'));
    await fireEvent.input(await screen.findByTestId('espo-secret'), { target: { value: 's3cret' } });
    await fireEvent.submit(screen.getByTestId('connect-espo'));
    await waitFor(() => expect(onchanged).toHaveBeenCalledOnce());
    expect(calls.find((c) => c.cmd === 'connect_espo')?.args).toEqual({
      name: 'brokerage',
      siteUrl: 'https://crm.example.com',
      apiKey: 'k3y',
      hmacSecret: 's3cret',
    });
    const item = await screen.findByTestId('account-item');
    expect(item.textContent).toContain('EspoCRM (HMAC)');
    expect((screen.getByTestId('espo-secret') as HTMLInputElement).value).toBe('');
  });

  it('connects a Wix app with its IDs and secret', async () => {
    const app = { name: 'office app', kind: 'wixApp', label: 'office app', baseUrl: 'https://www.wixapis.com', siteId: null };
    let accounts: unknown[] = [];
    const calls = backend({
      list_accounts: () => ({ current: accounts.length ? 'office app' : 'demo', accounts }),
      connect_wix_app: () => {
        accounts = [app];
        return app;
      },
    });
    const onchanged = vi.fn();
    render(AccountsDialog, { onchanged, onclose: () => {} });
    await screen.findByTestId('account-demo');
    await fireEvent.click(screen.getByTestId('tab-wix-app'));
    await fireEvent.input(screen.getByTestId('app-name'), { target: { value: 'office app' } });
    await fireEvent.input(screen.getByTestId('app-id'), { target: { value: ' app-1 ' } });
    await fireEvent.input(screen.getByTestId('app-instance-id'), { target: { value: 'inst-9' } });
    await fireEvent.input(screen.getByTestId('app-secret'), { target: { value: 's3cret' } });
    await fireEvent.submit(screen.getByTestId('connect-wix-app'));
    await waitFor(() => expect(onchanged).toHaveBeenCalledOnce());
    expect(calls.find((c) => c.cmd === 'connect_wix_app')?.args).toEqual({
      name: 'office app',
      appId: 'app-1',
      instanceId: 'inst-9',
      appSecret: 's3cret',
      baseUrl: 'https://www.wixapis.com',
    });
    expect((await screen.findByTestId('account-item')).textContent).toContain('Wix app');
    expect((screen.getByTestId('app-secret') as HTMLInputElement).value).toBe('');
  });
});
