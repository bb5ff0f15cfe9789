/**
 * Client-side branch ids (spec §6.3): a parent prefix (empty at top level) followed by a two-digit counter.
 * A top-level TCC makes `01`, `02`, …; a TCC nested in branch `02` makes `0201`, `0202`, ….
 */
import { DtxError } from './errors.js';

/** At most this many children per parent, as in DTM's clients. */
const MAX_CHILDREN = 99;
/** A prefix this long or longer means the nesting went too deep. */
const MAX_PREFIX_LENGTH = 20;

/** Hands out the ids of the sub-branches of one (global or branch) transaction, in order. */
export class BranchIdGenerator {
  #count = 0;

  /** @param parent the id of the enclosing branch; default `''` (the global transaction). */
  constructor(readonly parent = '') {}

  /** The next id. Throws a `DtxError` past 99 children or when `parent` has 20 or more characters. */
  next(): string {
    if (this.#count >= MAX_CHILDREN) throw new DtxError(`too many branches: at most ${MAX_CHILDREN} per parent`);
    if (this.parent.length >= MAX_PREFIX_LENGTH) {
      throw new DtxError(`branches nested too deep: parent branch id '${this.parent}' is ${this.parent.length} long`);
    }
    this.#count += 1;
    return this.current();
  }

  /** The id handed out last (the parent plus `00` before the first call). */
  current(): string {
    return `${this.parent}${String(this.#count).padStart(2, '0')}`;
  }
}
