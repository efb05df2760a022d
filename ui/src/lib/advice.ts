// What the user reads first for each stable error code; the error's own message (from Rust)
// adds the detail. One table for the whole window: the login form reads a code as advice about
// the login being checked, the rest of the window as advice about the CRM it is showing.
import { AppError } from './api';
import type { ErrorCode } from './bindings/ErrorCode';

/** Where the error is shown: the login form, or anywhere else in the window. */
export type Setting = 'login' | 'window';

const ADVICE: Partial<Record<ErrorCode, string | Record<Setting, string>>> = {
  KEYRING_UNAVAILABLE: 'Attaché keeps logins only in the system keyring, and none is available.',
  KEYRING_LOCKED: 'The system keyring is locked.',
  UNAUTHENTICATED: { login: 'The CRM refused this login.', window: 'The CRM refused the login.' },
  PERMISSION_DENIED: {
    login: 'The login works but lacks a permission.',
    window: 'The CRM login lacks a permission.',
  },
  UNAVAILABLE: {
    login: 'The CRM could not be reached.',
    window: 'The CRM cannot be reached right now; showing what is cached.',
  },
  RATE_LIMITED: 'The CRM asked us to slow down; try again in a minute.',
  NOT_FOUND: { login: '', window: 'That item is no longer in the CRM.' },
  NO_APPLICATION: 'No application on this computer opens this kind of file; use “Save as…” instead.',
  UNSAFE_TO_OPEN: 'Not opened, to keep this computer safe.',
  INVALID_INPUT: { login: 'Please check the form.', window: '' },
};

/** The error as an AppError (anything thrown that is not one becomes INTERNAL). */
export function asAppError(e: unknown): AppError {
  return e instanceof AppError ? e : new AppError({ code: 'INTERNAL', message: String(e) });
}

/** The advice for `e` where it is shown, then its message: one sentence for the user. */
export function explain(e: unknown, setting: Setting): string {
  const err = asAppError(e);
  const entry = ADVICE[err.code];
  const lead = typeof entry === 'string' ? entry : entry?.[setting];
  return lead ? `${lead} (${err.message})` : err.message;
}
