import type {
  FileControl,
  NewScheduledFile,
  Schedule,
  ScheduleChanges,
  ScheduledFile,
  ScheduleView,
} from '../../lambdas/core/schedule/schedule';

/** The schedule port in memory, as the DynamoDB adapter keeps it (a finished file is gone and stays gone). */
export class MemorySchedule implements Schedule {
  readonly files = new Map<string, ScheduledFile>();
  readonly pausedPartners = new Set<string>();
  readonly usersFinishedAt: Record<string, string> = {};
  landingsClosedAt: string | undefined;

  view(): Promise<ScheduleView> {
    const files = [...this.files.values()].sort((a, b) => a.landedAt.localeCompare(b.landedAt));
    return Promise.resolve({
      files,
      pausedPartners: [...this.pausedPartners],
      usersFinishedAt: { ...this.usersFinishedAt },
      ...(this.landingsClosedAt ? { landingsClosedAt: this.landingsClosedAt } : {}),
    });
  }

  register(file: NewScheduledFile): Promise<void> {
    if (!this.files.has(file.fileId)) {
      this.files.set(file.fileId, { ...file, state: 'queued', updatedAt: new Date().toISOString() });
    }
    return Promise.resolve();
  }

  /** Puts a whole entry, as another file's execution would have written it. */
  put(file: ScheduledFile): void {
    this.files.set(file.fileId, file);
  }

  read(fileId: string): Promise<ScheduledFile | undefined> {
    return Promise.resolve(this.files.get(fileId));
  }

  update(fileId: string, changes: ScheduleChanges): Promise<void> {
    const file = this.files.get(fileId);
    if (file) {
      const next: Record<string, unknown> = { ...file, updatedAt: new Date().toISOString() };
      for (const [name, value] of Object.entries(changes)) {
        if (value === null) delete next[name];
        else if (value !== undefined) next[name] = value;
      }
      this.files.set(fileId, next as unknown as ScheduledFile);
    }
    return Promise.resolve();
  }

  takeTurnToken(fileId: string, taskToken: string): Promise<boolean> {
    const file = this.files.get(fileId);
    if (file?.turnToken !== taskToken) return Promise.resolve(false);
    const { turnToken: _taken, ...rest } = file;
    this.files.set(fileId, rest);
    return Promise.resolve(true);
  }

  setControl(fileId: string, control: FileControl | null): Promise<ScheduledFile | undefined> {
    const file = this.files.get(fileId);
    if (!file || file.state === 'finalising') return Promise.resolve(undefined);
    const { control: _previous, ...rest } = file;
    const next: ScheduledFile = { ...rest, ...(control ? { control } : {}), updatedAt: new Date().toISOString() };
    this.files.set(fileId, next);
    return Promise.resolve(next);
  }

  setPartnerPaused(partner: string, paused: boolean): Promise<void> {
    if (paused) this.pausedPartners.add(partner);
    else this.pausedPartners.delete(partner);
    return Promise.resolve();
  }

  finish(file: Pick<ScheduledFile, 'fileId' | 'partner' | 'kind'>, at: string): Promise<void> {
    if (file.kind === 'users' && !((this.usersFinishedAt[file.partner] ?? '') >= at)) {
      this.usersFinishedAt[file.partner] = at;
    }
    this.files.delete(file.fileId);
    return Promise.resolve();
  }

  closeLandings(at: string): Promise<void> {
    this.landingsClosedAt = at;
    return Promise.resolve();
  }
}
