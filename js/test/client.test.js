// The client against a real Go peer (examples/browser) on loopback.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { dial, Code, TpError, protobuf } from '../src/tp.js'
import { start } from './server.js'

let srv
before(async () => { srv = await start() })
after(async () => { await srv?.kill() })

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const until = async (what, cond, ms = 5000) => {
  for (const end = Date.now() + ms; !(await cond());) {
    if (Date.now() > end) throw new Error('not within ' + ms + ' ms: ' + what)
    await sleep(10)
  }
}

test('calls, codecs, meta and deadlines', async () => {
  const peer = await dial(srv.url)
  try {
    assert.equal(await peer.call('/math/add', [1, 2]), 3)
    assert.deepEqual(await peer.call('/echo', { a: [1, 'two', null], b: { c: true } }), { a: [1, 'two', null], b: { c: true } })
    assert.equal(await peer.call('/text', 'shout', { codec: 'plain' }), 'SHOUT')
    const { value, meta } = await peer.call('/meta', {}, { meta: { 'X-Page': 'p1' }, timeout: 1000, full: true })
    assert.equal(value, 'p1|true') // the page's meta and its deadline reached the handler
    assert.equal(meta['X-Served'], 'go')
    assert.equal(await peer.call('/meta', {}, { meta: [['X-Page', 'p2']] }), 'p2|false')
    assert.equal((await peer.call('/big', 200000)).length, 200000)
    // protobuf: the page brings the bytes (here a google.protobuf.StringValue, field 1).
    const sv = s => new Uint8Array([0x0a, s.length, ...new TextEncoder().encode(s)])
    assert.deepEqual(await peer.call('/pb/upper', sv('pb'), { codec: 'protobuf' }), sv('PB'))
    // With the page's own message class (here a hand-written StringValue).
    const StringValue = protobuf(m => sv(m.value), b => ({ value: new TextDecoder().decode(b.subarray(2)) }))
    assert.deepEqual(await peer.call('/pb/upper', { value: 'class' }, { codec: StringValue }), { value: 'CLASS' })
    assert.equal(await peer.call('/math/add', [20, 22], { gzip: true }), 42)
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => peer.call('/math/add', [i, 1])))
    assert.deepEqual(many, Array.from({ length: 200 }, (_, i) => i + 1))
  } finally {
    peer.close()
  }
})

test('errors carry the code and message', async () => {
  const peer = await dial(srv.url)
  try {
    await assert.rejects(peer.call('/fail', {}), e => e instanceof TpError && e.code === 418 && e.message === "I'm a teapot")
    await assert.rejects(peer.call('/nothing', {}), { code: Code.NotFound })
    await assert.rejects(peer.call('/math/add', [1]), { code: Code.InvalidArgument })
    await assert.rejects(peer.call('/math/add', 'nope'), { code: Code.BadMessage })
    const t0 = Date.now()
    await assert.rejects(peer.call('/slow', 2000, { timeout: 100 }), { code: Code.Timeout })
    assert.ok(Date.now() - t0 < 1000)
    assert.equal(await peer.call('/math/add', [1, 1]), 2) // the session is unharmed
  } finally {
    peer.close()
  }
})

test('an aborted call cancels the handler', async () => {
  const peer = await dial(srv.url)
  try {
    const ac = new AbortController()
    const call = peer.call('/slow', 5000, { signal: ac.signal })
    await sleep(100)
    const t0 = Date.now()
    ac.abort()
    await assert.rejects(call, { code: Code.Canceled })
    assert.ok(Date.now() - t0 < 500)
    await until('the handler to see the cancel', async () => /canceled/.test(await peer.call('/last_cancel', {})))
  } finally {
    peer.close()
  }
})

test('the server calls and pushes into the page', async () => {
  const peer = await dial(srv.url)
  try {
    const notes = []
    peer.handle('/ui/notify', text => { notes.push(text) })
    peer.handle('/ui/add', ([a, b], ctx) => {
      assert.equal(ctx.method, '/ui/add')
      return a + b
    })
    assert.match(await peer.call('/ask_page', [2, 3]), /^sum=5 missing=not found$/)
    assert.deepEqual(notes, ['hello from go'])
  } finally {
    peer.close()
  }
})

test('streams both ways, with flow control', async () => {
  const peer = await dial(srv.url)
  try {
    // The page opens: an echo, then its trailer.
    const st = await peer.openStream('/stream/echo')
    for (const v of ['a', { b: 2 }, [3]]) await st.send(v)
    const got = []
    for (let i = 0; i < 3; i++) got.push((await st.recv()).value)
    st.closeSend()
    assert.deepEqual(got, ['a', { b: 2 }, [3]])
    assert.equal((await st.recv()).done, true)
    assert.equal(st.trailer['X-Count'], '3')

    // 500 KB toward a page that reads late: the server waits on the
    // window, nothing is lost, and no frame goes past the credit (which
    // would close the connection).
    const count = await peer.openStream('/stream/count')
    await count.send(500)
    await sleep(300)
    let n = 0
    for await (const v of count) assert.equal(v.split(':')[0], String(n++))
    assert.equal(n, 500)

    // The page sends more than a window before it reads.
    const echo = await peer.openStream('/stream/echo')
    const chunk = 'z'.repeat(1000)
    const sending = (async () => { for (let i = 0; i < 300; i++) await echo.send(chunk); echo.closeSend() })()
    await sleep(200)
    let back = 0
    for await (const v of echo) { assert.equal(v, chunk); back++ }
    await sending
    assert.equal(back, 300)

    // The server opens a stream to the page.
    peer.handleStream('/page/upper', async st => { for await (const w of st) await st.send(w.toUpperCase()) })
    assert.deepEqual(await peer.call('/open_page_stream', ['a', 'bc']), ['A', 'BC'])
  } finally {
    peer.close()
  }
})

test('reconnects after the server restarts', async () => {
  const own = await start()
  const peer = await dial(own.url, { minDelay: 50, maxDelay: 200 })
  const events = []
  peer.addEventListener('close', () => events.push('close'))
  peer.addEventListener('reconnect', () => events.push('reconnect'))
  try {
    const inFlight = assert.rejects(peer.call('/slow', 5000), { code: Code.ConnClosed })
    await sleep(100)
    await own.kill('SIGKILL')
    await inFlight
    const waiting = peer.call('/math/add', [2, 2], { timeout: 10000 }) // made while the server is down
    await sleep(300)
    const again = await start(own.addr)
    try {
      assert.equal(await waiting, 4)
      assert.deepEqual(events.slice(0, 1), ['close'])
      await until('the reconnect event', () => events.includes('reconnect'))
      await assert.rejects(peer.call('/slow', 5000, { timeout: 50 }), { code: Code.Timeout })
    } finally {
      peer.close()
      await again.kill()
    }
  } finally {
    peer.close()
    await own.kill()
  }
})

test('a server that shuts down gracefully finishes its calls; new ones wait for the next', async () => {
  const own = await start()
  const peer = await dial(own.url, { minDelay: 50, maxDelay: 200 })
  try {
    const inFlight = peer.call('/slow', 300)
    await sleep(50)
    await own.kill('SIGTERM') // Close: tells the page, finishes /slow
    assert.equal(await inFlight, 'done')
    const waiting = peer.call('/math/add', [3, 4], { timeout: 10000 })
    const again = await start(own.addr)
    try {
      assert.equal(await waiting, 7)
    } finally {
      peer.close()
      await again.kill()
    }
  } finally {
    peer.close()
  }
})

test('bad frames close the connection with a clear error', async () => {
  const base = `ws://${srv.addr}/badws?kind=`
  for (const [kind, re] of [['lie', /overruns|ends inside/], ['text', /text message/], ['huge', /over the limit/]]) {
    await assert.rejects(dial(base + kind, { timeout: 2000 }), e => e.code === Code.BadMessage && re.test(e.message), kind)
  }
  // Nothing was thrown outside a promise: node:test fails the run on an
  // uncaught exception. And the good endpoint still serves.
  const peer = await dial(srv.url)
  assert.equal(await peer.call('/math/add', [1, 2]), 3)
  peer.close()
})

test('a call on a closed peer fails at once', async () => {
  const peer = await dial(srv.url)
  peer.close()
  await assert.rejects(peer.call('/math/add', [1, 2]), { code: Code.ConnClosed })
  await assert.rejects(dial('ws://127.0.0.1:1/tp', { timeout: 1000 }), { code: Code.ConnClosed })
})
