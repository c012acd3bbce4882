// The wire format, against frames Go's socket.Pack wrote, and against
// garbage.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { T, encodeInner, envelope, decodeInner, Frames, BadFrame } from '../src/wire.js'

const hex = s => Uint8Array.from(s.match(/../g), h => parseInt(h, 16))
const toHex = b => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')

// Printed by Go: socket.Pack(rawproto.New()(), nil, m).
const goCall = '00000024010001000000076a00092f6d6174682f616464000106582d506167650270315b312c325d'
const goReply = '0000001a010002000000070000052f6661696cc40606746561706f740000'

test('frames as Go packs them', () => {
  const call = envelope(encodeInner({ type: T.CALL, seq: 7, codec: 0x6a, method: '/math/add', meta: [['X-Page', 'p1']], body: new TextEncoder().encode('[1,2]') }))
  assert.equal(toHex(call), goCall)
  const reply = envelope(encodeInner({ type: T.REPLY, seq: 7, method: '/fail', status: { code: 418, message: 'teapot' } }))
  assert.equal(toHex(reply), goReply)

  const f = new Frames(1 << 20)
  f.push(hex(goReply))
  const { inner, size } = f.next()
  assert.equal(size, hex(goReply).length)
  const m = decodeInner(inner)
  assert.deepEqual([m.type, m.seq, m.method, m.status.code, m.status.message], [T.REPLY, 7, '/fail', 418, 'teapot'])
})

test('round trips, negative codes and long varints', () => {
  for (const code of [0, 1, -1, 418, -70000, 2 ** 30 - 1]) {
    const m = { type: T.PUSH, seq: 0xfffffffe, codec: 0x70, timeout: 2 ** 40, method: 'é/ü', status: code ? { code, message: 'm', cause: 'c' } : null, meta: [['k', 'v'], ['k', '']], body: new Uint8Array([1, 2, 3]) }
    const d = decodeInner(encodeInner(m))
    assert.equal(d.seq, m.seq)
    assert.equal(d.timeout, m.timeout)
    assert.equal(d.method, m.method)
    assert.deepEqual(d.status, m.status)
    assert.deepEqual(d.meta, m.meta)
    assert.deepEqual([...d.body], [1, 2, 3])
  }
})

test('frames split across messages, and several in one', () => {
  const a = hex(goCall); const b = hex(goReply)
  const all = new Uint8Array([...a, ...b, ...a])
  for (let cut = 1; cut < all.length; cut += 7) {
    const f = new Frames(1 << 20)
    const got = []
    for (let i = 0; i < all.length; i += cut) {
      f.push(all.subarray(i, i + cut))
      for (let fr; (fr = f.next());) got.push(decodeInner(fr.inner).type)
    }
    assert.deepEqual(got, [T.CALL, T.REPLY, T.CALL])
  }
})

test('garbage is a BadFrame, never another error', () => {
  let seed = 1
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed }
  for (let i = 0; i < 20000; i++) {
    const b = Uint8Array.from({ length: rand() % 64 }, () => rand() % 256)
    if (i % 2) { b[0] = 0; b[1] = 0; b[2] = 0; if (b.length > 3) b[3] = Math.max(2, b.length - 4) } // plausible envelopes
    try {
      const f = new Frames(1 << 16)
      f.push(b)
      for (let fr; (fr = f.next());) decodeInner(fr.inner)
    } catch (e) {
      assert.ok(e instanceof BadFrame, `input ${Array.from(b)} threw ${e}`)
    }
  }
  assert.throws(() => { const f = new Frames(100); f.push(hex('7fffffff0100')); f.next() }, /over the limit/)
})

test('a large frame in many small pieces costs linear work', () => {
  const body = new Uint8Array(4 << 20)
  const frame = envelope(encodeInner({ type: T.PUSH, seq: 1, method: '/big', body }))
  const f = new Frames(8 << 20)
  const t0 = Date.now()
  for (let i = 0; i < frame.length; i += 1024) f.push(frame.subarray(i, i + 1024))
  const got = f.next()
  assert.equal(decodeInner(got.inner).body.length, body.length)
  assert.ok(f.buf.length <= 2 * frame.length + 1024, `a buffer of ${f.buf.length} bytes for a frame of ${frame.length}`)
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`)
  assert.equal(f.next(), null)
})
