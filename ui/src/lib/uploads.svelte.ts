// The upload tray's state: jobs by id, kept current from the `uploads` events (which carry only
// what changed), newest first.
import type { UploadEvent } from './bindings/UploadEvent';
import type { UploadView } from './bindings/UploadView';

export class Uploads {
  jobs: UploadView[] = $state([]);
  active = $state(0);
  waiting = $state(0);
  /** Paused from the tray or the window: nothing is sent until resumed. */
  paused = $state(false);

  /** Replaces everything (the tray's first paint, from `list_uploads`). */
  reset(jobs: UploadView[]) {
    this.jobs = [...jobs].sort((a, b) => b.id - a.id);
    this.active = jobs.filter((j) => j.state === 'sending' || j.state === 'verifying').length;
    this.waiting = jobs.filter((j) => j.state === 'queued').length;
  }

  /** Merges an event; returns the jobs that just became done (the grid refreshes for them). */
  apply(event: UploadEvent): UploadView[] {
    const byId = new Map(this.jobs.map((j) => [j.id, j]));
    const newlyDone: UploadView[] = [];
    for (const job of event.jobs) {
      if (job.state === 'done' && byId.get(job.id)?.state !== 'done') newlyDone.push(job);
      byId.set(job.id, job);
    }
    this.jobs = [...byId.values()].sort((a, b) => b.id - a.id);
    this.active = event.active;
    this.waiting = event.waiting;
    this.paused = event.paused;
    return newlyDone;
  }

  get unfinished(): number {
    return this.jobs.filter((j) => j.state === 'queued' || j.state === 'sending' || j.state === 'verifying').length;
  }

  get failed(): number {
    return this.jobs.filter((j) => j.state === 'failed').length;
  }
}

/** "3 files attached", "2 attached, 1 failed": the end-of-batch notification. */
export function batchSummaryText(s: { attached: number; failed: number; cancelled: number }): string {
  const files = (n: number) => `${n} file${n === 1 ? '' : 's'}`;
  const parts = [`${files(s.attached)} attached`];
  if (s.failed) parts.push(`${s.failed} failed`);
  if (s.cancelled) parts.push(`${s.cancelled} cancelled`);
  return parts.join(', ');
}
