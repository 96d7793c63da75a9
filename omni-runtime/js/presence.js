// Presence: each topic's list of who is there, as a client (or mux component) keeps it from
// the server's `presence_state` (a whole list) and `presence_diff` (what changed) frames.

/** @import { PresenceEntry, PresenceEvent, PresenceList } from "./omni.d.ts" */

/**
 * A list being read or changed: key to entries, oldest first.
 *
 * @typedef {Map<string, readonly PresenceEntry[]>} Entries
 */

/** @type {PresenceList} */
export const EMPTY = Object.freeze({});

/** Each topic's presence list, frozen as `presence()` hands it out: replaced on a change. */
export class PresenceLists {
  constructor() {
    /** @type {Map<string, PresenceList>} */
    this._lists = new Map();
  }

  /** The list of `topic`; `{}` for a topic with no one, or none heard of.
   *
   * @param {string} topic
   */
  get(topic) {
    return this._lists.get(topic) ?? EMPTY;
  }

  /** A topic's whole list: it replaces the one held, and only what changed is news (after a
   * resume the server sends the list again, most often unchanged). The event to report, or
   * null when nothing changed.
   *
   * @param {string} topic
   * @param {Entries} state
   * @returns {PresenceEvent | null}
   */
  replace(topic, state) {
    const held = this._held(topic);
    const joins = missing(state, held);
    const leaves = missing(held, state);
    if (joins.size === 0 && leaves.size === 0) return null;
    return this._set(topic, state, joins, leaves);
  }

  /** What changed in a topic: leaves removed by `ref` (a key left empty goes), then joins
   * added (a `ref` held already is skipped). Reported as it came, even when it changed
   * nothing held.
   *
   * @param {string} topic
   * @param {Entries} joins
   * @param {Entries} leaves
   * @returns {PresenceEvent}
   */
  change(topic, joins, leaves) {
    const list = this._held(topic);
    for (const [key, gone] of leaves) {
      const entries = list.get(key);
      if (!entries) continue;
      const kept = entries.filter((e) => !gone.some((g) => g.ref === e.ref));
      if (kept.length > 0) list.set(key, kept);
      else list.delete(key);
    }
    for (const [key, joined] of joins) {
      const entries = [...(list.get(key) ?? [])];
      for (const entry of joined) {
        if (!entries.some((e) => e.ref === entry.ref)) entries.push(entry);
      }
      list.set(key, entries);
    }
    return this._set(topic, list, joins, leaves);
  }

  /** Every list held leaves (they belonged to a session that is gone): the events saying so.
   *
   * @returns {PresenceEvent[]}
   */
  clear() {
    const lists = [...this._lists];
    this._lists.clear();
    return lists.map(([topic, list]) => ({ topic, joins: EMPTY, leaves: list, list: EMPTY }));
  }

  /** A topic's list as a Map from key to entries, to change without touching the frozen one.
   *
   * @param {string} topic
   * @returns {Entries}
   */
  _held(topic) {
    return new Map(Object.entries(this._lists.get(topic) ?? EMPTY));
  }

  /**
   * @param {string} topic
   * @param {Entries} list
   * @param {Entries} joins
   * @param {Entries} leaves
   * @returns {PresenceEvent}
   */
  _set(topic, list, joins, leaves) {
    const frozen = freezeList(list);
    if (list.size > 0) this._lists.set(topic, frozen);
    else this._lists.delete(topic);
    return { topic, joins: freezeList(joins), leaves: freezeList(leaves), list: frozen };
  }
}

/** A wire presence list (`{ key: [{ ref, meta }] }`) as a Map from key to frozen entries, or
 * null when it is not shaped like one.
 *
 * @param {unknown} value
 * @returns {Entries | null}
 */
export function readList(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  /** @type {Entries} */
  const list = new Map();
  for (const [key, entries] of Object.entries(value)) {
    if (!Array.isArray(entries)) return null;
    /** @type {PresenceEntry[]} */
    const read = [];
    for (const entry of entries) {
      if (entry === null || typeof entry !== "object" || typeof entry.ref !== "string") return null;
      read.push(Object.freeze({ ref: entry.ref, meta: deepFreeze(entry.meta ?? null) }));
    }
    if (read.length > 0) list.set(key, read);
  }
  return list;
}

/** The entries of `from` whose `ref` is not under the same key in `to`, by key (as the Rust
 * `Diff::between`: a key in both with the same refs is no change).
 *
 * @param {Entries} from
 * @param {Entries} to
 * @returns {Entries}
 */
function missing(from, to) {
  /** @type {Entries} */
  const gone = new Map();
  for (const [key, entries] of from) {
    const others = to.get(key) ?? [];
    const absent = entries.filter((e) => !others.some((o) => o.ref === e.ref));
    if (absent.length > 0) gone.set(key, absent);
  }
  return gone;
}

/** A Map of key to entries as the frozen plain object handed to the page. `fromEntries`
 * defines each key as its own property, so even a key named `__proto__` is kept as data.
 *
 * @param {Entries} list
 * @returns {PresenceList}
 */
function freezeList(list) {
  return Object.freeze(
    Object.fromEntries([...list].map(([key, entries]) => [key, Object.freeze([...entries])])),
  );
}

/**
 * @param {unknown} value
 * @returns {unknown}
 */
function deepFreeze(value) {
  // A typed array with elements cannot be frozen (a `bin` meta, over MessagePack).
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
