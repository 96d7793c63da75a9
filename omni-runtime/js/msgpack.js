// MessagePack, as much of it as frames need: every form the server's encoder (rmp-serde)
// writes is read; JSON's data model is written, each value in its smallest form.

export const UTF8_OUT = new TextEncoder();
// Fatal, so a string that is not UTF-8 fails the frame as it would fail a JSON text frame;
// a leading U+FEFF is kept, as JSON keeps it inside a string.
const UTF8_IN = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A value already encoded, written as it is: a queued payload is encoded once, when it is
 * sent, and goes into every frame that carries it. */
export class Packed {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.bytes = bytes;
  }
}

/** Encodes `value` as MessagePack, seeing it as `JSON.stringify` would, except that bytes
 * (`Uint8Array`, `ArrayBuffer`, any typed array or `DataView`) are `bin`. Throws a TypeError
 * on what JSON cannot write either: a cycle, a BigInt.
 *
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encodeMsgpack(value) {
  const packer = new Packer();
  packer.write(value, "");
  return packer.bytes.slice(0, packer.length);
}

/** Decodes one MessagePack value from `data` (an ArrayBuffer or a view of one), as
 * `JSON.parse` would give it: maps are objects (integer keys as strings), integers past 2^53
 * rounded Numbers, `bin` a Uint8Array of its own. Throws a SyntaxError on input that is not
 * one value, and on extension types.
 *
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {unknown}
 */
export function decodeMsgpack(data) {
  /** @type {Uint8Array} */
  let bytes;
  if (data instanceof Uint8Array) bytes = data;
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else throw new TypeError("MessagePack is read from an ArrayBuffer or a typed array");
  const unpacker = new Unpacker(bytes);
  const value = unpacker.read();
  if (unpacker.pos !== bytes.length) {
    throw new SyntaxError(`${bytes.length - unpacker.pos} bytes follow the value`);
  }
  return value;
}

/** What `JSON.stringify` writes for `value` under `key`: its `toJSON()` if it has one, except
 * for bytes (node's Buffer has a `toJSON`, but is bytes).
 *
 * @param {unknown} value
 * @param {string} key
 * @returns {unknown}
 */
function jsonView(value, key) {
  if (value === null || typeof value !== "object" || isBytes(value)) return value;
  const view = /** @type {{ toJSON?: unknown }} */ (value);
  return typeof view.toJSON === "function" ? view.toJSON(key) : value;
}

/**
 * @param {unknown} value
 * @returns {value is ArrayBuffer | ArrayBufferView}
 */
function isBytes(value) {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** Values an object property is left out for, as `JSON.stringify` leaves it out.
 *
 * @param {unknown} value
 */
function isSkipped(value) {
  return value === undefined || typeof value === "function" || typeof value === "symbol";
}

class Packer {
  constructor() {
    this.bytes = new Uint8Array(256);
    this.view = new DataView(this.bytes.buffer);
    this.length = 0;
    // The arrays and objects being written: a cycle is refused, as JSON refuses it, rather
    // than recursing until the stack runs out.
    /** @type {Set<object>} */
    this.open = new Set();
  }

  /** Makes room for `n` more bytes.
   *
   * @param {number} n
   */
  reserve(n) {
    const need = this.length + n;
    if (need <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.bytes.subarray(0, this.length));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }

  /** @param {number} b */
  byte(b) {
    this.reserve(1);
    this.bytes[this.length++] = b;
  }

  /** @param {Uint8Array} bytes */
  raw(bytes) {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** A type byte, then `n` in `size` bytes, big-endian, signed or not.
   *
   * @param {number} type
   * @param {1 | 2 | 4 | 8} size
   * @param {number} n
   */
  head(type, size, n, signed = false) {
    this.reserve(1 + size);
    this.bytes[this.length++] = type;
    const at = this.length;
    if (size === 1) signed ? this.view.setInt8(at, n) : this.view.setUint8(at, n);
    else if (size === 2) signed ? this.view.setInt16(at, n) : this.view.setUint16(at, n);
    else if (size === 4) signed ? this.view.setInt32(at, n) : this.view.setUint32(at, n);
    else signed ? this.view.setBigInt64(at, BigInt(n)) : this.view.setBigUint64(at, BigInt(n));
    this.length += size;
  }

  /** The header of an array or map of `n` entries: fix form, 16 or 32 bits.
   *
   * @param {number} fix
   * @param {number} type16
   * @param {number} n
   */
  count(fix, type16, n) {
    if (n < 0x10) this.byte(fix | n);
    else if (n < 0x10000) this.head(type16, 2, n);
    else this.head(type16 + 1, 4, n);
  }

  /**
   * @param {unknown} value
   * @param {string} key
   * @returns {void}
   */
  write(value, key) {
    value = jsonView(value, key);
    switch (typeof value) {
      case "number":
        return this.number(value);
      case "string":
        return this.string(value);
      case "boolean":
        return this.byte(value ? 0xc3 : 0xc2);
      case "bigint":
        throw new TypeError("a BigInt has no MessagePack form here (nor a JSON one)");
      case "object":
        if (value === null) return this.byte(0xc0);
        if (value instanceof Packed) return this.raw(value.bytes);
        if (isBytes(value)) return this.binary(value);
        return this.container(value);
      default:
        // undefined, a function, a symbol: in an array, JSON writes null.
        return this.byte(0xc0);
    }
  }

  /** @param {number} n */
  number(n) {
    if (!Number.isSafeInteger(n)) {
      this.reserve(9);
      this.bytes[this.length++] = 0xcb;
      this.view.setFloat64(this.length, n);
      this.length += 8;
    } else if (n >= 0) {
      if (n < 0x80) this.byte(n);
      else if (n < 0x100) this.head(0xcc, 1, n);
      else if (n < 0x10000) this.head(0xcd, 2, n);
      else if (n < 0x100000000) this.head(0xce, 4, n);
      else this.head(0xcf, 8, n);
    } else if (n >= -0x20) {
      this.byte(n & 0xff);
    } else if (n >= -0x80) {
      this.head(0xd0, 1, n, true);
    } else if (n >= -0x8000) {
      this.head(0xd1, 2, n, true);
    } else if (n >= -0x80000000) {
      this.head(0xd2, 4, n, true);
    } else {
      this.head(0xd3, 8, n, true);
    }
  }

  /** @param {string} s */
  string(s) {
    const bytes = UTF8_OUT.encode(s);
    const n = bytes.length;
    if (n < 0x20) this.byte(0xa0 | n);
    else if (n < 0x100) this.head(0xd9, 1, n);
    else if (n < 0x10000) this.head(0xda, 2, n);
    else this.head(0xdb, 4, n);
    this.raw(bytes);
  }

  /** @param {ArrayBuffer | ArrayBufferView} value */
  binary(value) {
    const bytes =
      value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const n = bytes.length;
    if (n < 0x100) this.head(0xc4, 1, n);
    else if (n < 0x10000) this.head(0xc5, 2, n);
    else this.head(0xc6, 4, n);
    this.raw(bytes);
  }

  /** @param {object} value */
  container(value) {
    if (this.open.has(value)) throw new TypeError("a cyclic value has no MessagePack form");
    this.open.add(value);
    if (Array.isArray(value)) {
      this.count(0x90, 0xdc, value.length);
      for (let i = 0; i < value.length; i++) this.write(value[i], String(i));
    } else {
      // Own enumerable string keys, as JSON; a property JSON would leave out is left out.
      /** @type {[string, unknown][]} */
      const entries = [];
      const object = /** @type {Record<string, unknown>} */ (value);
      for (const key of Object.keys(object)) {
        const inner = jsonView(object[key], key);
        if (!isSkipped(inner)) entries.push([key, inner]);
      }
      this.count(0x80, 0xde, entries.length);
      for (const [key, inner] of entries) {
        this.string(key);
        this.write(inner, key);
      }
    }
    this.open.delete(value);
  }
}

class Unpacker {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  /** Moves past `n` bytes and returns where they start; throws if the input ends first.
   *
   * @param {number} n
   */
  take(n) {
    const at = this.pos;
    if (n > this.bytes.length - at) throw new SyntaxError(`the input ends inside a value (at byte ${at})`);
    this.pos = at + n;
    return at;
  }

  /** An unsigned big-endian number of `size` bytes; past 2^53, rounded as JSON would.
   *
   * @param {1 | 2 | 4 | 8} size
   * @returns {number}
   */
  uint(size) {
    const at = this.take(size);
    if (size === 1) return this.bytes[at];
    if (size === 2) return this.view.getUint16(at);
    if (size === 4) return this.view.getUint32(at);
    // Exact high half times 2^32 plus the low half: one rounding, to the nearest Number.
    return this.view.getUint32(at) * 2 ** 32 + this.view.getUint32(at + 4);
  }

  /** @returns {unknown} */
  read() {
    const type = this.bytes[this.take(1)];
    if (type < 0x80) return type;
    if (type < 0x90) return this.map(type & 0x0f);
    if (type < 0xa0) return this.array(type & 0x0f);
    if (type < 0xc0) return this.string(type & 0x1f);
    if (type >= 0xe0) return type - 0x100;
    switch (type) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.binary(this.uint(1));
      case 0xc5:
        return this.binary(this.uint(2));
      case 0xc6:
        return this.binary(this.uint(4));
      case 0xca:
        return this.view.getFloat32(this.take(4));
      case 0xcb:
        return this.view.getFloat64(this.take(8));
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        return this.uint(8);
      case 0xd0:
        return this.view.getInt8(this.take(1));
      case 0xd1:
        return this.view.getInt16(this.take(2));
      case 0xd2:
        return this.view.getInt32(this.take(4));
      case 0xd3: {
        const at = this.take(8);
        return this.view.getInt32(at) * 2 ** 32 + this.view.getUint32(at + 4);
      }
      case 0xd9:
        return this.string(this.uint(1));
      case 0xda:
        return this.string(this.uint(2));
      case 0xdb:
        return this.string(this.uint(4));
      case 0xdc:
        return this.array(this.uint(2));
      case 0xdd:
        return this.array(this.uint(4));
      case 0xde:
        return this.map(this.uint(2));
      case 0xdf:
        return this.map(this.uint(4));
      case 0xc1:
        throw new SyntaxError(`0xc1 is no MessagePack type (at byte ${this.pos - 1})`);
      default:
        throw new SyntaxError(`extension types are not read (0x${type.toString(16)} at byte ${this.pos - 1})`);
    }
  }

  /** @param {number} n */
  string(n) {
    const at = this.take(n);
    // Keys and most short values are ASCII: read by hand, they skip a call to the decoder.
    if (n <= 16) {
      let text = "";
      for (let i = at; i < at + n; i++) {
        const b = this.bytes[i];
        if (b >= 0x80) return this.utf8(at, n);
        text += String.fromCharCode(b);
      }
      return text;
    }
    return this.utf8(at, n);
  }

  /**
   * @param {number} at
   * @param {number} n
   */
  utf8(at, n) {
    try {
      return UTF8_IN.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw new SyntaxError(`a string that is not UTF-8 (at byte ${at})`);
    }
  }

  /** @param {number} n */
  binary(n) {
    const at = this.take(n);
    // A copy: a page keeping a file does not keep the whole frame's buffer alive with it.
    return this.bytes.slice(at, at + n);
  }

  /** Checks that `n` entries of at least `size` bytes each can be there, so that a forged
   * length cannot make a huge allocation.
   *
   * @param {number} n
   * @param {number} size
   */
  expect(n, size) {
    if (n * size > this.bytes.length - this.pos) {
      throw new SyntaxError(`the input ends inside a value (at byte ${this.pos})`);
    }
  }

  /** @param {number} n */
  array(n) {
    this.expect(n, 1);
    const items = new Array(n);
    for (let i = 0; i < n; i++) items[i] = this.read();
    return items;
  }

  /** @param {number} n */
  map(n) {
    this.expect(n, 2);
    /** @type {Record<string, unknown>} */
    const object = {};
    for (let i = 0; i < n; i++) {
      const key = this.key();
      const value = this.read();
      // Defined, not assigned: a key named `__proto__` is data, as in JSON.parse's objects.
      if (key === "__proto__") {
        Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        object[key] = value;
      }
    }
    return object;
  }

  /** A map key: a string, or an integer (a Rust `HashMap<u32, _>`), read as JSON names it. */
  key() {
    const type = this.bytes[this.pos];
    const text = (type >= 0xa0 && type < 0xc0) || (type >= 0xd9 && type <= 0xdb);
    const integer = type < 0x80 || type >= 0xe0 || (type >= 0xcc && type <= 0xd3);
    // At the end of the input (`type` undefined), `read` says so.
    if (!text && !integer && type !== undefined) {
      throw new SyntaxError(`a map key is a string or an integer, not 0x${type.toString(16)} (at byte ${this.pos})`);
    }
    return String(this.read());
  }
}
