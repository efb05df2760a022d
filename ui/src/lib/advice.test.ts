import { describe, expect, it } from 'vitest';
import { AppError } from './api';
import { explain } from './advice';

describe('explain', () => {
  it('leads with the advice for the code where it is shown, then the message', () => {
    const e = new AppError({ code: 'UNAVAILABLE', message: 'crm.example.com could not be reached' });
    expect(explain(e, 'window')).toBe(
      'The CRM cannot be reached right now; showing what is cached. (crm.example.com could not be reached)',
    );
    expect(explain(e, 'login')).toBe('The CRM could not be reached. (crm.example.com could not be reached)');
  });

  it('gives the message alone where a code has no advice there', () => {
    expect(explain(new AppError({ code: 'INVALID_INPUT', message: 'bad name' }), 'window')).toBe('bad name');
    expect(explain(new AppError({ code: 'INTERNAL', message: 'boom' }), 'login')).toBe('boom');
  });

  it('reads anything thrown that is not an AppError as its text', () => {
    expect(explain(new Error('socket closed'), 'window')).toBe('Error: socket closed');
  });
});
