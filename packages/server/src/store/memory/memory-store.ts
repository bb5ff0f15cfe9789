import type { GlobalStatus } from '@dtx/protocol';
import { UNFINISHED_STATUSES } from '@dtx/protocol';
import { NotFoundError, UniqueConflictError } from '../../core/errors.js';
import type { KV, TransBranch, TransGlobal } from '../../core/model.js';
import { stuckReasonOf } from '../../core/stuck.js';
import { nextPositionOf } from '../scan-query.js';
import type { FailedAttempt, ScanQuery, StatusChange, Store, StuckRule, UnfinishedCount } from '../store.js';

const copyTrans = (t: TransGlobal): TransGlobal => ({ ...t, opts: { ...t.opts } });
const copyBranch = (b: TransBranch): TransBranch => ({ ...b, binData: b.binData.slice() });

function copyAttempt(row: TransBranch, b: TransBranch): void {
  row.attempts = b.attempts;
  row.lastAttemptTime = b.lastAttemptTime;
  row.lastResult = b.lastResult;
  row.lastError = b.lastError;
}

/**
 * An in-memory Store for unit tests of the core. Same contract as the durable stores, no durability.
 */
export class MemoryStore implements Store {
  private readonly globals = new Map<string, TransGlobal>();
  private readonly branches = new Map<string, TransBranch[]>();
  private readonly kvs = new Map<string, KV>();
  private nextId = 1;

  async ping(): Promise<void> {}
  async close(): Promise<void> {}

  async findTrans(gid: string): Promise<TransGlobal | undefined> {
    const t = this.globals.get(gid);
    return t && copyTrans(t);
  }

  async scanTrans(q: ScanQuery): Promise<{ trans: TransGlobal[]; nextPosition: string }> {
    const pos = q.position ? Number(q.position) : Number.POSITIVE_INFINITY;
    const rows = [...this.globals.values()]
      .filter((t) => (t.id ?? 0) < pos)
      .filter((t) => !q.status || t.status === q.status)
      .filter((t) => !q.transType || t.transType === q.transType)
      .filter((t) => q.createTimeStart === undefined || t.createTime >= q.createTimeStart)
      .filter((t) => q.createTimeEnd === undefined || t.createTime <= q.createTimeEnd)
      .filter((t) => !q.gidPrefix || t.gid.startsWith(q.gidPrefix))
      .sort((a, b) => (b.id ?? 0) - (a.id ?? 0))
      .slice(0, q.limit)
      .map(copyTrans);
    return { trans: rows, nextPosition: nextPositionOf(rows, q.limit) };
  }

  async countUnfinished(): Promise<UnfinishedCount[]> {
    const groups = new Map<string, UnfinishedCount>();
    for (const t of this.globals.values()) {
      if (!UNFINISHED_STATUSES.includes(t.status)) continue;
      const key = `${t.transType}\n${t.status}`;
      const g = groups.get(key);
      if (!g) {
        groups.set(key, {
          transType: t.transType,
          status: t.status,
          count: 1,
          oldestCreateTime: t.createTime,
          oldestNextCronTime: t.nextCronTime,
        });
        continue;
      }
      g.count++;
      if (t.createTime < g.oldestCreateTime) g.oldestCreateTime = t.createTime;
      if (t.nextCronTime < g.oldestNextCronTime) g.oldestNextCronTime = t.nextCronTime;
    }
    return [...groups.values()];
  }

  async findBranches(gid: string): Promise<TransBranch[]> {
    return (this.branches.get(gid) ?? []).map(copyBranch);
  }

  async saveNew(trans: TransGlobal, branches: TransBranch[]): Promise<void> {
    if (this.globals.has(trans.gid)) throw new UniqueConflictError();
    trans.id = this.nextId++;
    this.globals.set(trans.gid, copyTrans(trans));
    for (const b of branches) b.id = this.nextId++;
    this.branches.set(trans.gid, branches.map(copyBranch));
  }

  async insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    const t = this.globals.get(gid);
    if (!t || t.status !== status) throw new NotFoundError();
    const list = this.branches.get(gid) ?? [];
    branches.forEach((b, i) => {
      const same = (x: TransBranch) => x.branchId === b.branchId && x.op === b.op;
      if (list.some(same) || branches.slice(0, i).some(same)) throw new UniqueConflictError();
    });
    for (const b of branches) {
      b.id = this.nextId++;
      list.push(copyBranch(b));
    }
    this.branches.set(gid, list);
  }

  async updateBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    const t = this.globals.get(gid);
    if (!t || t.status !== status) throw new NotFoundError();
    this.writeBranches(gid, branches);
  }

  private writeBranches(gid: string, branches: readonly TransBranch[]): void {
    const list = this.branches.get(gid) ?? [];
    for (const b of branches) {
      const row = list.find((x) => x.id === b.id);
      if (!row) continue;
      row.status = b.status;
      row.finishTime = b.finishTime;
      row.rollbackTime = b.rollbackTime;
      row.updateTime = b.updateTime;
      copyAttempt(row, b);
    }
  }

  async recordFailedAttempt(
    gid: string,
    status: GlobalStatus,
    branch: TransBranch | undefined,
    a: FailedAttempt,
    now: number,
  ): Promise<void> {
    const t = this.globals.get(gid);
    if (!t || t.status !== status) return;
    t.nextCronTime = a.nextCronTime;
    t.nextCronInterval = a.nextCronInterval;
    t.failedAttempts = a.failedAttempts;
    t.lastError = a.lastError;
    t.updateTime = now;
    const row = branch && (this.branches.get(gid) ?? []).find((x) => x.id === branch.id);
    if (row && branch) copyAttempt(row, branch);
  }

  async claimStuckAlert(gid: string, status: GlobalStatus): Promise<boolean> {
    const t = this.globals.get(gid);
    if (!t || t.status !== status || t.stuckAlerted) return false;
    t.stuckAlerted = true;
    return true;
  }

  async findStuck(rule: StuckRule, position: string, limit: number) {
    const pos = position ? Number(position) : Number.POSITIVE_INFINITY;
    const rows = [...this.globals.values()]
      .filter((t) => (t.id ?? 0) < pos && stuckReasonOf(t, rule) !== undefined)
      .sort((a, b) => (b.id ?? 0) - (a.id ?? 0))
      .slice(0, limit)
      .map(copyTrans);
    return { trans: rows, nextPosition: nextPositionOf(rows, limit) };
  }

  async countStuck(rule: StuckRule): Promise<{ attempts: number; age: number }> {
    const out = { attempts: 0, age: 0 };
    for (const t of this.globals.values()) {
      const r = stuckReasonOf(t, rule);
      if (r) out[r]++;
    }
    return out;
  }

  async changeStatus(
    gid: string,
    from: GlobalStatus,
    to: GlobalStatus,
    change: StatusChange,
    now: number,
  ): Promise<void> {
    const t = this.globals.get(gid);
    if (!t || t.status !== from) throw new NotFoundError();
    t.status = to;
    t.updateTime = now;
    if (change.rollbackReason) t.rollbackReason = change.rollbackReason;
    if (change.result) t.result = change.result;
    if (change.finishTime !== undefined) t.finishTime = change.finishTime;
    if (change.rollbackTime !== undefined) t.rollbackTime = change.rollbackTime;
    if (change.nextCronTime !== undefined) t.nextCronTime = change.nextCronTime;
    if (change.nextCronInterval !== undefined) t.nextCronInterval = change.nextCronInterval;
    if (change.branches) this.writeBranches(gid, change.branches);
  }

  async touchCronTime(
    gid: string,
    status: GlobalStatus,
    nextCronTime: number,
    interval: number,
    now: number,
    resetFailedAttempts = false,
  ): Promise<void> {
    const t = this.globals.get(gid);
    if (!t || t.status !== status) return;
    t.nextCronTime = nextCronTime;
    t.nextCronInterval = interval;
    t.updateTime = now;
    if (resetFailedAttempts) t.failedAttempts = 0;
  }

  async lockDue(dueBefore: number, leaseUntil: number, owner: string, limit: number, now: number) {
    const due = [...this.globals.values()]
      .filter((t) => UNFINISHED_STATUSES.includes(t.status) && t.nextCronTime < dueBefore)
      .sort((a, b) => a.nextCronTime - b.nextCronTime)
      .slice(0, limit);
    for (const t of due) {
      t.nextCronTime = leaseUntil;
      t.owner = owner;
      t.updateTime = now;
    }
    return due.map(copyTrans);
  }

  async resetCronTime(after: number, limit: number, now: number) {
    const due = [...this.globals.values()].filter(
      (t) => UNFINISHED_STATUSES.includes(t.status) && t.nextCronTime > after,
    );
    const changed = due.slice(0, limit);
    for (const t of changed) {
      t.nextCronTime = now;
      t.updateTime = now;
    }
    return { count: changed.length, hasRemaining: changed.length === limit };
  }

  async resetTransCronTime(gid: string, now: number): Promise<void> {
    const t = this.globals.get(gid);
    if (!t) throw new NotFoundError();
    t.nextCronTime = now;
    t.updateTime = now;
  }

  async deleteFinished(before: number, limit: number): Promise<number> {
    const old = [...this.globals.values()]
      .filter((t) => (t.status === 'succeed' || t.status === 'failed') && t.updateTime < before)
      .slice(0, limit);
    for (const t of old) {
      this.globals.delete(t.gid);
      this.branches.delete(t.gid);
    }
    return old.length;
  }

  async scanKV(cat: string, position: string, limit: number) {
    const pos = position ? Number(position) : Number.POSITIVE_INFINITY;
    const rows = [...this.kvs.values()]
      .filter((kv) => kv.cat === cat && (kv.id ?? 0) < pos)
      .sort((a, b) => (b.id ?? 0) - (a.id ?? 0))
      .slice(0, limit)
      .map((kv) => ({ ...kv }));
    return { kv: rows, nextPosition: nextPositionOf(rows, limit) };
  }

  async findKV(cat: string, key: string): Promise<KV[]> {
    return [...this.kvs.values()]
      .filter((kv) => (!cat || kv.cat === cat) && (!key || kv.k === key))
      .map((kv) => ({ ...kv }));
  }

  async createKV(cat: string, k: string, v: string, now: number): Promise<void> {
    const key = `${cat}\u0000${k}`;
    if (this.kvs.has(key)) throw new UniqueConflictError();
    this.kvs.set(key, { id: this.nextId++, cat, k, v, version: 1, createTime: now, updateTime: now });
  }

  async updateKV(kv: KV, now: number): Promise<void> {
    const row = this.kvs.get(`${kv.cat}\u0000${kv.k}`);
    if (!row || row.version !== kv.version) throw new NotFoundError();
    row.v = kv.v;
    row.version = kv.version + 1;
    row.updateTime = now;
    kv.version = row.version;
  }

  async deleteKV(cat: string, k: string): Promise<void> {
    if (!this.kvs.delete(`${cat}\u0000${k}`)) throw new NotFoundError();
  }
}
