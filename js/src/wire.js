// tp's default wire format, as the Go peer writes it (socket.Pack around
// rawproto):
//
//   size     uint32, big endian: bytes after this field
//   version  uint8: 1 (rawproto)
//   npipe    uint8, then npipe filter ids ('g' gzip)
//   inner    the filtered rawproto encoding:
//     type      uint8              CALL 1, REPLY 2, PUSH 3, OPEN 4, DATA 5,
//                                  WINDOW 6, CLOSE 7, END 8, CANCEL 9
//     seq       uint32, big endian
//     codec     uint8              body codec id; 0 for none
//     timeout   uvarint            microseconds left; 0 for none
//     method    uvarint n, n bytes
//     code      zigzag varint      0: no status, and msg and cause are absent
//     msg       uvarint n, n bytes
//     cause     uvarint n, n bytes
//     nmeta     uvarint, then key and value, each uvarint n, n bytes
//     body      the rest

export const T = { CALL: 1, REPLY: 2, PUSH: 3, OPEN: 4, DATA: 5, WINDOW: 6, CLOSE: 7, END: 8, CANCEL: 9 }

const utf8 = new TextEncoder()
const text = new TextDecoder('utf-8', { fatal: true })

export function toBytes (s) { return utf8.encode(s) }
export function toText (b) { return text.decode(b) }

/** A growing byte buffer for one frame. */
class Out {
  constructor () { this.b = new Uint8Array(128); this.n = 0 }
  room (k) {
    if (this.n + k <= this.b.length) return
    const b = new Uint8Array(Math.max(2 * this.b.length, this.n + k))
    b.set(this.b.subarray(0, this.n))
    this.b = b
  }

  u8 (v) { this.room(1); this.b[this.n++] = v }
  u32 (v) { this.room(4); new DataView(this.b.buffer).setUint32(this.n, v); this.n += 4 }
  uvarint (v) { // v < 2^53
    while (v >= 0x80) { this.u8((v % 0x80) | 0x80); v = Math.floor(v / 0x80) }
    this.u8(v)
  }

  bytes (b) { this.room(b.length); this.b.set(b, this.n); this.n += b.length }
  str (s) { const b = utf8.encode(s); this.uvarint(b.length); this.bytes(b) }
}

/**
 * encodeInner returns the rawproto encoding of m: {type, seq, codec,
 * timeout (µs), method, status: {code, message, cause} | null, meta:
 * [[key, value]], body: Uint8Array}.
 */
export function encodeInner (m) {
  const o = new Out()
  o.u8(m.type)
  o.u32(m.seq >>> 0)
  o.u8(m.codec || 0)
  o.uvarint(Math.max(0, Math.ceil(m.timeout || 0)))
  o.str(m.method || '')
  const code = m.status ? m.status.code | 0 : 0
  o.uvarint(((code << 1) ^ (code >> 31)) >>> 0)
  if (code !== 0) { o.str(m.status.message || ''); o.str(m.status.cause || '') }
  const meta = m.meta || []
  o.uvarint(meta.length)
  for (const [k, v] of meta) { o.str(k); o.str(String(v)) }
  if (m.body) o.bytes(m.body)
  return o.b.subarray(0, o.n)
}

/** envelope wraps an encoded (and filtered) inner in the frame's envelope. */
export function envelope (inner, pipe = []) {
  const f = new Uint8Array(6 + pipe.length + inner.length)
  new DataView(f.buffer).setUint32(0, 2 + pipe.length + inner.length)
  f[4] = 1
  f[5] = pipe.length
  f.set(pipe, 6)
  f.set(inner, 6 + pipe.length)
  return f
}

/** A BadFrame is a frame that cannot be read: the connection must end. */
export class BadFrame extends Error {}

/** In reads inner encodings back. */
class In {
  constructor (b) { this.b = b; this.i = 0 }
  need (k) { if (this.i + k > this.b.length) throw new BadFrame('frame ends inside its header') }
  u8 () { this.need(1); return this.b[this.i++] }
  u32 () { this.need(4); const v = new DataView(this.b.buffer, this.b.byteOffset).getUint32(this.i); this.i += 4; return v }
  uvarint () {
    let v = 0; let mul = 1
    for (let k = 0; k < 8; k++) {
      const c = this.u8()
      v += (c & 0x7f) * mul
      if (c < 0x80) return v
      mul *= 0x80
    }
    throw new BadFrame('a varint past 2^56')
  }

  bytes () {
    const n = this.uvarint()
    if (n > this.b.length - this.i) throw new BadFrame(`a field of ${n} bytes overruns the frame`)
    const s = this.b.subarray(this.i, this.i + n)
    this.i += n
    return s
  }

  str () {
    try { return text.decode(this.bytes()) } catch (e) { throw e instanceof BadFrame ? e : new BadFrame('a string that is not UTF-8') }
  }
}

/** decodeInner reads a rawproto encoding; it throws BadFrame. */
export function decodeInner (b) {
  const d = new In(b)
  const m = { type: d.u8(), seq: d.u32(), codec: d.u8(), timeout: d.uvarint(), method: d.str(), status: null, meta: [] }
  if (m.type < T.CALL || m.type > T.CANCEL) throw new BadFrame(`unknown message type ${m.type}`)
  const z = d.uvarint()
  const code = (z % 2) ? -(z + 1) / 2 : z / 2
  if (code !== 0) m.status = { code, message: d.str(), cause: d.str() }
  const n = d.uvarint()
  if (n > (b.length - d.i) / 2) throw new BadFrame(`${n} meta pairs cannot fit in the frame`)
  for (let k = 0; k < n; k++) m.meta.push([d.str(), d.str()])
  m.body = b.subarray(d.i)
  return m
}

/**
 * Frames reassembles frames from a byte stream (WebSocket messages may
 * carry several frames, or parts). next returns {pipe, inner, size} or
 * null when no whole frame is buffered; it throws BadFrame. The buffer
 * grows by doubling, so a frame that arrives in many small messages costs
 * linear copying, and no more than twice the bytes received.
 */
export class Frames {
  constructor (limit) { this.limit = limit; this.buf = new Uint8Array(0); this.start = 0; this.end = 0 }
  push (chunk) {
    if (this.start === this.end) this.start = this.end = 0
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start
      const b = new Uint8Array(Math.max(2 * live, live + chunk.length, 1024))
      b.set(this.buf.subarray(this.start, this.end))
      this.buf = b; this.start = 0; this.end = live
    }
    this.buf.set(chunk, this.end)
    this.end += chunk.length
  }

  next () {
    const b = this.buf.subarray(this.start, this.end)
    if (b.length < 4) return null
    const size = new DataView(b.buffer, b.byteOffset).getUint32(0)
    if (size > this.limit) throw new BadFrame(`a frame of ${size} bytes is over the limit of ${this.limit}`)
    if (size < 2) throw new BadFrame('a frame too short for its envelope')
    if (b.length < 4 + size) return null
    if (b[4] !== 1) throw new BadFrame(`frame version ${b[4]}: only rawproto (1) is spoken here`)
    const np = b[5]
    if (np > size - 2) throw new BadFrame('a filter pipe longer than its frame')
    // A copy: the buffer is reused, and what the frame carries may be kept.
    const f = b.slice(0, 4 + size)
    this.start += 4 + size
    return { pipe: f.subarray(6, 6 + np), inner: f.subarray(6 + np), size: 4 + size }
  }
}
