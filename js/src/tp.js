// tp in a web page: a peer like any other, over a WebSocket to a Go peer
// serving tp's WebSocket transport (transport/websocket). It speaks tp's
// default wire format (wire.js), so the Go side needs no configuration.
//
//   const peer = await dial('ws://host/tp')
//   const sum = await peer.call('/math/add', [1, 2], { timeout: 500 })
//   peer.handle('/ui/notify', (arg, ctx) => { ... })   // the server's CALLs and PUSHes
//
// Nothing here throws outside a promise it returned: a bad frame or a
// broken connection closes that connection with an error, which pending
// calls get, and the peer reconnects.

import { T, encodeInner, envelope, decodeInner, Frames, BadFrame, toBytes, toText } from './wire.js'

/** tp's status codes (Go's tp.Code). */
export const Code = Object.freeze({
  OK: 0,
  Unknown: 1,
  ConnClosed: 2,
  DialFailed: 3,
  WriteFailed: 4,
  BadMessage: 5,
  NotFound: 6,
  Timeout: 7,
  Overloaded: 8,
  Internal: 9,
  Unauthorized: 10,
  TooLarge: 11,
  Canceled: 12,
  Unsupported: 13,
  InvalidArgument: 14,
  ShuttingDown: 15,
  FailedPrecondition: 16
})

/** TpError is every failure: a tp status code, a message, and its cause. */
export class TpError extends Error {
  constructor (code, message, cause) {
    super(message)
    this.name = 'TpError'
    this.code = code
    if (cause) this.cause = cause
  }
}

const err = (code, message, cause) => new TpError(code, message, cause)

function asError (e) {
  if (e instanceof TpError) return e
  if (e && e.name === 'AbortError') return err(Code.Canceled, 'canceled', e.message)
  if (e && e.name === 'TimeoutError') return err(Code.Timeout, 'the deadline passed', e.message)
  return err(Code.Internal, e && e.message ? e.message : String(e))
}

/** Codecs by name: how bodies are encoded. */
export const codecs = {
  json: { id: 0x6a, encode: v => v === undefined ? new Uint8Array(0) : toBytes(JSON.stringify(v)), decode: b => b.length ? JSON.parse(toText(b)) : undefined },
  plain: { id: 0x73, encode: v => toBytes(String(v ?? '')), decode: b => toText(b) },
  /** protobuf carries bytes: pass a message's toBinary() (or a Uint8Array), get a Uint8Array to fromBinary. */
  protobuf: { id: 0x70, encode: v => v instanceof Uint8Array ? v : v.toBinary(), decode: b => b.slice() }
}
/**
 * protobuf returns a protobuf codec for a page's own message classes:
 * protobuf(m => toBinary(Schema, m), b => fromBinary(Schema, b)) with
 * protobuf-es 2, or protobuf(m => m.toBinary(), b => Msg.fromBinary(b))
 * with version 1.
 */
export function protobuf (encode, decode) {
  return { id: codecs.protobuf.id, encode, decode }
}

const codecById = id => Object.values(codecs).find(c => c.id === id)
const codecOf = name => {
  const c = typeof name === 'object' ? name : codecs[name || 'json']
  if (!c) throw err(Code.Unsupported, `no codec ${name}: json, plain or protobuf`)
  return c
}

const GZIP = 0x67 // 'g'
async function pipeThrough (bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream))
  return new Uint8Array(await out.arrayBuffer())
}
const canGzip = typeof CompressionStream === 'function'

const WINDOW = 64 << 10 // Go's InitialStreamWindow
const MAX_STREAMS = 1024 // as Go's default PeerConfig.MaxStreams
const frameCost = size => size + 64 // what a DATA frame takes from the credit, as Go counts
const features = 'streams,cancel'

/**
 * dial connects to a Go peer's tp WebSocket URL. It resolves once the
 * peer said hello, and rejects if the first connection fails. Options:
 *   timeout         the first connection's bound, ms (10000)
 *   reconnect       reconnect after a connection ends (true)
 *   minDelay, maxDelay   the backoff between reconnects, ms (100, 5000)
 *   maxFrame        the largest frame read, bytes (8 MiB)
 *   meta            [key, value] pairs sent with every call and push
 *   WebSocket       the WebSocket class (the global one by default)
 */
export async function dial (url, opts = {}) {
  const peer = new Peer(url, opts)
  await peer._connect(opts.timeout ?? 10000)
  return peer
}

/** Peer is one end of tp sessions to one URL, reconnecting as needed. */
export class Peer extends EventTarget {
  constructor (url, opts) {
    super()
    this.url = url
    this.opts = { reconnect: true, minDelay: 100, maxDelay: 5000, maxFrame: 8 << 20, ...opts }
    this.WS = opts.WebSocket || globalThis.WebSocket
    this.handlers = new Map()
    this.streamHandlers = new Map()
    this.conn = null // the connection calls go out on, once it said hello
    this.closed = false
    this.seq = 0
    this.attempt = 0
    this.waiting = new Set() // resolvers of calls waiting for a connection
  }

  /** handle serves the server's CALLs and PUSHes to method: fn(arg, ctx) returns (or resolves to) the reply. */
  handle (method, fn) { this.handlers.set(method, fn) }

  /** handleStream serves streams the server opens to method: fn(stream, ctx). */
  handleStream (method, fn) { this.streamHandlers.set(method, fn) }

  /**
   * call calls method with arg and resolves to the reply, or rejects with a
   * TpError (whose meta is the reply's). Options: timeout (ms, travels to
   * the handler), meta ([[k, v]] or an object), signal (an AbortSignal:
   * aborting cancels the handler), codec ('json', 'plain', 'protobuf' or
   * {id, encode, decode}), gzip, full (resolve to {value, meta}, with the
   * reply's meta).
   */
  async call (method, arg, o = {}) {
    const deadline = o.timeout > 0 ? Date.now() + o.timeout : 0
    for (;;) {
      const conn = await this._ready(deadline, o.signal)
      try {
        return await conn.call(method, arg, o, deadline)
      } catch (e) {
        if (!(e instanceof Resend)) throw e
      }
    }
  }

  /** push sends method a one-way message; it resolves once sent. */
  async push (method, arg, o = {}) {
    const conn = await this._ready(o.timeout > 0 ? Date.now() + o.timeout : 0, o.signal)
    await conn.send(T.PUSH, this._seq(), method, arg, o, 0)
  }

  /** openStream opens a stream to the server's stream handler of method. */
  async openStream (method, o = {}) {
    const deadline = o.timeout > 0 ? Date.now() + o.timeout : 0
    const conn = await this._ready(deadline, o.signal)
    return conn.openStream(method, o, deadline)
  }

  /** close ends the peer: pending calls fail, and it does not reconnect. */
  close () {
    this.closed = true
    clearTimeout(this.timer)
    for (const w of this.waiting) w(err(Code.ConnClosed, 'the peer is closed'))
    if (this.conn) this.conn.end(err(Code.ConnClosed, 'the peer is closed'), true)
    if (this.trying) this.trying.ws.close()
  }

  _seq () { this.seq = (this.seq + 1) >>> 0; return this.seq }
  _emit (type, detail) { this.dispatchEvent(Object.assign(new Event(type), { detail })) }

  // _ready resolves to a connection that takes calls, waiting for a
  // reconnect up to deadline.
  _ready (deadline, signal) {
    if (this.closed) return Promise.reject(err(Code.ConnClosed, 'the peer is closed'))
    if (this.conn && !this.conn.draining) return Promise.resolve(this.conn)
    return new Promise((resolve, reject) => {
      let timer
      const done = (c) => {
        this.waiting.delete(done)
        clearTimeout(timer)
        signal?.removeEventListener('abort', aborted)
        c instanceof Conn ? resolve(c) : reject(c)
      }
      const aborted = () => done(asError(signal.reason))
      if (signal?.aborted) return aborted()
      signal?.addEventListener('abort', aborted)
      if (deadline) timer = setTimeout(() => done(err(Code.Timeout, 'the deadline passed waiting for the connection')), deadline - Date.now())
      this.waiting.add(done)
    })
  }

  // _connect makes one connection; it resolves once the peer said hello.
  _connect (timeout) {
    const conn = new Conn(this)
    this.trying = conn
    return conn.open(timeout).then(() => {
      this.trying = null
      if (this.closed) { conn.end(err(Code.ConnClosed, 'the peer is closed'), true); return }
      const again = this.everUp
      conn.up = true
      this.conn = conn
      this.attempt = 0
      this.everUp = true
      for (const w of [...this.waiting]) w(conn)
      this._emit(again ? 'reconnect' : 'open')
    }, e => {
      this.trying = null
      throw e
    })
  }

  // _lost is told, once, that an established conn ended (or, with no why,
  // that it drains): the peer reconnects, at once after a drain, else
  // with backoff.
  _lost (conn, why) {
    if (conn.told) return
    conn.told = true
    if (this.conn === conn) this.conn = null
    if (why) this._emit('close', why)
    this._retry(conn.draining && !why ? 0 : undefined)
  }

  _retry (delay) {
    if (this.closed || !this.opts.reconnect) return
    delay ??= Math.min(this.opts.maxDelay, this.opts.minDelay * 2 ** this.attempt++) * (0.5 + Math.random() / 2)
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this._connect(this.opts.timeout ?? 10000).catch(() => this._retry()), delay)
  }
}

// Resend says a call never ran (its connection was draining) and may go
// out on the next connection.
class Resend extends Error {}

/** Conn is one WebSocket's life: its pending calls, streams and handlers. */
class Conn {
  constructor (peer) {
    this.peer = peer
    this.pending = new Map() // seq → {resolve, reject, codec}
    this.running = new Map() // the server's CALLs in handlers: seq → AbortController
    this.streams = new Map()
    this.nextStream = 0
    this.frames = new Frames(peer.opts.maxFrame)
    this.queue = Promise.resolve() // frames with filters are undone in order
    this.features = ''
    this.draining = false
    this.ended = null
  }

  open (timeout) {
    return new Promise((resolve, reject) => {
      const ws = this.ws = new this.peer.WS(this.peer.url, 'tp')
      ws.binaryType = 'arraybuffer'
      const timer = setTimeout(() => fail(err(Code.Timeout, `no tp peer said hello at ${this.peer.url} within ${timeout} ms`)), timeout)
      const fail = e => { clearTimeout(timer); this.hello = null; reject(e); try { ws.close() } catch {} }
      this.hello = () => { clearTimeout(timer); this.hello = null; resolve() }
      this.helloFail = fail
      ws.onopen = () => this.write(T.PUSH, 0, '', null, [['tp-features', features]])
      ws.onmessage = ev => this.receive(ev.data)
      // Browsers follow an error with a close event; Node's WebSocket may
      // not (a refused connection), so an error ends the connection too.
      ws.onerror = () => this.end(err(Code.ConnClosed, `the connection to ${this.peer.url} failed`), true)
      ws.onclose = ev => {
        const why = err(Code.ConnClosed, `the connection closed (${ev.code}${ev.reason ? ': ' + ev.reason : ''})`)
        if (this.hello) fail(why)
        this.end(why, false)
      }
    })
  }

  // write sends one frame; it never waits (the WebSocket buffers).
  write (type, seq, method, status, meta, body, codec = 0, timeout = 0, pipe = []) {
    if (this.ended) throw this.ended
    const inner = encodeInner({ type, seq, codec, timeout, method, status, meta, body })
    return this.writeInner(inner, pipe)
  }

  writeInner (inner, pipe) {
    const frame = envelope(inner, pipe)
    this.ws.send(frame)
    return frame.length
  }

  // send encodes and writes a CALL or PUSH (gzip, when asked, is async).
  async send (type, seq, method, arg, o, deadline) {
    const c = codecOf(o.codec)
    const meta = metaPairs(this.peer.opts.meta).concat(metaPairs(o.meta))
    const timeout = deadline ? Math.max(1, (deadline - Date.now()) * 1000) : 0
    let inner = encodeInner({ type, seq, codec: c.id, timeout, method, meta, body: c.encode(arg) })
    const pipe = []
    if (o.gzip && canGzip) {
      inner = await pipeThrough(inner, new CompressionStream('gzip'))
      pipe.push(GZIP)
    }
    if (this.ended) throw this.draining ? new Resend() : this.ended
    this.writeInner(inner, pipe)
    return c
  }

  call (method, arg, o, deadline) {
    if (this.draining) return Promise.reject(new Resend())
    const seq = this.peer._seq()
    return new Promise((resolve, reject) => {
      let timer
      const signal = o.signal
      const settle = (fn, v) => {
        if (!this.pending.delete(seq)) return
        clearTimeout(timer)
        signal?.removeEventListener('abort', aborted)
        fn(v)
        this.leaveIfDone()
      }
      const aborted = () => {
        const why = asError(signal.reason)
        if (this.features.includes('cancel') && !this.ended) {
          try { this.write(T.CANCEL, seq, '', { code: Code.Canceled, message: why.message }) } catch {}
        }
        settle(reject, why)
      }
      if (signal?.aborted) return reject(asError(signal.reason))
      let codec
      try { codec = codecOf(o.codec) } catch (e) { return reject(e) }
      this.pending.set(seq, { resolve: v => settle(resolve, v), reject: e => settle(reject, e), full: o.full, codec })
      signal?.addEventListener('abort', aborted)
      if (deadline) timer = setTimeout(() => settle(reject, err(Code.Timeout, 'the deadline passed waiting for the reply')), deadline - Date.now())
      this.send(T.CALL, seq, method, arg, o, deadline).catch(e => settle(reject, e))
    })
  }

  openStream (method, o, deadline) {
    if (!this.features.includes('streams')) throw err(Code.Unsupported, "the server's tp does not know streams")
    this.nextStream += 2
    const c = codecOf(o.codec)
    const st = new Stream(this, this.nextStream, method, c, true)
    this.streams.set(st.id, st)
    const timeout = deadline ? Math.max(1, (deadline - Date.now()) * 1000) : 0
    this.write(T.OPEN, st.id, method, null, metaPairs(o.meta), null, c.id, timeout)
    st.watch(deadline, o.signal)
    return st
  }

  // receive takes one WebSocket message: bytes of one or more frames.
  receive (data) {
    if (this.ended) return
    if (typeof data === 'string') return this.fail(err(Code.BadMessage, 'a text message: tp speaks binary'))
    try {
      this.frames.push(new Uint8Array(data))
      for (let f; (f = this.frames.next());) {
        if (f.pipe.length) {
          const { pipe, inner, size } = f
          this.queue = this.queue.then(() => this.undo(pipe, inner)).then(b => this.dispatch(decodeInner(b), size)).catch(e => this.fail(e))
        } else {
          const m = decodeInner(f.inner)
          this.queue = this.queue.then(() => this.dispatch(m, f.size)).catch(e => this.fail(e))
        }
      }
    } catch (e) {
      this.fail(e)
    }
  }

  async undo (pipe, inner) {
    for (let i = pipe.length - 1; i >= 0; i--) {
      if (pipe[i] !== GZIP || !canGzip) throw new BadFrame(`filter ${pipe[i]} is not known here`)
      inner = await pipeThrough(inner, new DecompressionStream('gzip'))
    }
    return inner
  }

  fail (e) {
    const why = e instanceof TpError ? e : err(Code.BadMessage, 'a bad frame from the server: ' + e.message)
    this.end(why, true)
  }

  dispatch (m, size) {
    if (this.ended) return
    switch (m.type) {
      case T.REPLY: return this.reply(m)
      case T.CALL: case T.PUSH:
        if (m.method === '') return this.notice(m)
        return this.serve(m)
      case T.CANCEL: return this.running.get(m.seq)?.abort(err(m.status?.code || Code.Canceled, m.status?.message || 'canceled by the caller'))
      case T.OPEN: return this.accept(m)
      default: return this.streams.get(m.seq ^ 1)?.frame(m, size)
    }
  }

  reply (m) {
    const p = this.pending.get(m.seq)
    if (!p) return // it gave up waiting
    const meta = Object.fromEntries(m.meta)
    if (m.status) return p.reject(Object.assign(err(m.status.code, m.status.message, m.status.cause || undefined), { meta }))
    const c = p.codec.id === m.codec ? p.codec : codecById(m.codec) || p.codec // the caller's own codec, when the reply is in it
    let v
    try { v = c.decode(m.body) } catch (e) { return p.reject(err(Code.BadMessage, 'cannot decode the reply: ' + e.message)) }
    p.resolve(p.full ? { value: v, meta } : v)
  }

  // notice handles a PUSH with no method: the hello, or a notice.
  notice (m) {
    if (!m.status) {
      this.features = metaGet(m.meta, 'tp-features') || ''
      if (this.hello) this.hello()
      return
    }
    if (m.status.code !== Code.ShuttingDown) return this.end(err(m.status.code, m.status.message), true)
    if (metaGet(m.meta, 'tp-answer')) return // an answer to a notice of ours: a page sends none
    // The server shuts down: new calls go to the next connection, and
    // this one closes once its calls are done.
    this.draining = true
    if (this.peer.conn === this) this.peer.conn = null
    this.write(T.PUSH, 0, '', { code: Code.ShuttingDown, message: 'moving to a new connection' }, [['tp-answer', 'move']])
    this.peer._lost(this, null)
    this.peer._emit('drain')
    this.leaveIfDone()
  }

  leaveIfDone () {
    if (this.draining && !this.ended && this.pending.size === 0 && this.running.size === 0) this.end(null, true)
  }

  // serve runs a handler for the server's CALL or PUSH.
  async serve (m) {
    const isCall = m.type === T.CALL
    const fn = this.peer.handlers.get(m.method)
    const c = codecById(m.codec)
    const replyMeta = []
    const ac = new AbortController()
    let timer
    if (m.timeout) timer = setTimeout(() => ac.abort(err(Code.Timeout, 'the deadline passed')), m.timeout / 1000)
    if (isCall) this.running.set(m.seq, ac)
    let out, status = null
    try {
      if (!fn) throw err(Code.NotFound, `no ${isCall ? 'CALL' : 'PUSH'} handler for "${m.method}" in the page`)
      if (!c) throw err(Code.Unsupported, `unknown body codec ${m.codec}`)
      let arg
      try { arg = c.decode(m.body) } catch (e) { throw err(Code.BadMessage, 'cannot decode the body: ' + e.message) }
      const ctx = {
        method: m.method,
        meta: Object.fromEntries(m.meta),
        signal: ac.signal,
        isCall,
        setMeta: (k, v) => replyMeta.push([k, String(v)])
      }
      out = await fn(arg, ctx)
      if (ac.signal.aborted) throw asError(ac.signal.reason)
    } catch (e) {
      status = asError(e)
    } finally {
      clearTimeout(timer)
      this.running.delete(m.seq)
    }
    if (!isCall || this.ended) return this.leaveIfDone()
    let body = null
    if (!status) {
      try { body = c.encode(out) } catch (e) { status = err(Code.Internal, 'cannot encode the reply: ' + e.message) }
    }
    const st = status && { code: status.code || Code.Internal, message: status.message, cause: status.cause ? String(status.cause) : '' }
    this.write(T.REPLY, m.seq, m.method, st, replyMeta, body, m.codec)
    this.leaveIfDone()
  }

  accept (m) {
    if (m.seq % 2 !== 0 || m.seq === 0) return this.fail(err(Code.BadMessage, `the server opened stream ${m.seq}: an opener's ids are even`))
    const fn = this.peer.streamHandlers.get(m.method)
    const id = m.seq ^ 1
    const c = codecById(m.codec) || codecs.json
    if (!fn) return this.write(T.END, id, '', { code: Code.NotFound, message: `no stream handler for "${m.method}" in the page` })
    if (this.streams.size >= MAX_STREAMS) return this.write(T.END, id, '', { code: Code.Overloaded, message: `the page has ${MAX_STREAMS} streams open, its limit` })
    const st = new Stream(this, id, m.method, c, false)
    st.header = Object.fromEntries(m.meta)
    this.streams.set(id, st)
    st.watch(m.timeout ? Date.now() + m.timeout / 1000 : 0)
    Promise.resolve().then(() => fn(st, { method: m.method, meta: st.header, signal: st.signal })).then(
      () => st.end(null, true), e => st.end(asError(e), true))
  }

  // end closes the connection: pending calls fail with why (none is left
  // when it drained), streams end, handlers are canceled.
  end (why, close) {
    if (this.ended) return
    this.ended = why || err(Code.ConnClosed, 'the connection closed')
    if (this.hello) return this.helloFail(this.ended)
    for (const p of [...this.pending.values()]) p.reject(this.draining && !why ? new Resend() : err(Code.ConnClosed, 'the connection closed before the reply', this.ended.message))
    for (const ac of this.running.values()) ac.abort(this.ended)
    for (const st of [...this.streams.values()]) st.ended || st.finish(err(Code.ConnClosed, 'the connection closed', this.ended.message))
    if (close) try { this.ws.close(1000) } catch {}
    if (this.up) this.peer._lost(this, why)
  }
}

/**
 * Stream is a flow of messages both ways, with Go's flow control: a
 * sender waits while the reader has its whole window unread.
 */
export class Stream {
  constructor (conn, id, method, codec, opened) {
    Object.assign(this, { conn, id, method, codec, opened })
    this.credit = WINDOW // what this end may still send
    this.granted = WINDOW // what the other end may send, in all
    this.received = 0
    this.consumed = 0
    this.inbox = []
    this.wake = null
    this.closedIn = this.closedOut = this.ended = false
    this.error = null
    this.header = {}
    this.trailer = {}
    this.ac = new AbortController()
    this.signal = this.ac.signal
  }

  watch (deadline, signal) {
    if (deadline) this.timer = setTimeout(() => this.reset(err(Code.Timeout, 'the deadline passed on the stream')), deadline - Date.now())
    signal?.addEventListener('abort', () => this.reset(asError(signal.reason)))
  }

  _wait () { return new Promise(resolve => { this.wake = resolve }) }
  _wakeUp () { const w = this.wake; this.wake = null; w?.() }

  /** send sends v, waiting for credit; it rejects once the stream ended. */
  async send (v) {
    for (;;) {
      if (this.ended) throw this.error || err(Code.FailedPrecondition, 'the stream is over')
      if (this.closedOut) throw err(Code.FailedPrecondition, 'send after closeSend')
      if (this.credit > 0) break
      await this._wait()
    }
    const size = this.conn.write(T.DATA, this.id, '', null, null, this.codec.encode(v), this.codec.id)
    this.credit -= frameCost(size)
  }

  /** recv resolves to {value, done}: done once the other end closed its side; it rejects with the reset's error. */
  async recv () {
    for (;;) {
      if (this.inbox.length) {
        const { m, size } = this.inbox.shift()
        this.consumed += frameCost(size)
        if (this.consumed >= WINDOW / 4 && !this.ended && !this.closedIn) {
          this.granted += this.consumed
          this.conn.write(T.WINDOW, this.id, '', null, null, uvarint(this.consumed))
          this.consumed = 0
        }
        return { value: this.codec.decode(m.body), done: false }
      }
      if (this.ended && this.error) throw this.error
      if (this.ended || this.closedIn) return { value: undefined, done: true }
      await this._wait()
    }
  }

  async * [Symbol.asyncIterator] () {
    for (let r; !(r = await this.recv()).done;) yield r.value
  }

  /** closeSend says this end sends no more; meta is the trailer. */
  closeSend (meta) {
    if (this.closedOut || this.ended) return
    this.closedOut = true
    this.conn.write(T.CLOSE, this.id, '', null, metaPairs(meta))
    if (this.closedIn) this.finish(null)
  }

  /** close ends the stream both ways; the other end sees Canceled. */
  close () { this.reset(err(Code.Canceled, 'the stream was closed')) }

  /** reset ends the stream both ways with e's code. */
  reset (e) {
    if (this.ended) return
    const why = asError(e || err(Code.Canceled, 'canceled'))
    try { this.conn.write(T.END, this.id, '', { code: why.code, message: why.message }) } catch {}
    this.finish(why)
  }

  // end is a handler's return: END carrying why (null: done cleanly).
  end (why, tell) {
    if (this.ended) return
    if (tell) try { this.conn.write(T.END, this.id, '', why && { code: why.code, message: why.message }) } catch {}
    this.finish(why)
  }

  finish (why) {
    if (this.ended) return
    this.ended = true
    this.error = why
    clearTimeout(this.timer)
    this.conn.streams.delete(this.id)
    if (why) this.ac.abort(why)
    this._wakeUp()
  }

  frame (m, size) {
    switch (m.type) {
      case T.DATA:
        if (this.received >= this.granted) return this.conn.fail(err(Code.BadMessage, `flow-control violation on stream ${this.id}`))
        this.received += frameCost(size)
        if (!this.ended && !this.closedIn) this.inbox.push({ m, size })
        break
      case T.WINDOW: {
        let n = 0; let mul = 1
        for (const c of m.body) { n += (c & 0x7f) * mul; mul *= 128; if (c < 0x80) break }
        this.credit += n
        if (this.credit > 2 ** 32) return this.conn.fail(err(Code.BadMessage, `flow-control violation: stream ${this.id} was granted more than 4 GiB`))
        break
      }
      case T.CLOSE:
        this.closedIn = true
        this.trailer = Object.fromEntries(m.meta)
        if (this.closedOut) this.finish(null)
        break
      case T.END:
        this.trailer = Object.fromEntries(m.meta)
        this.finish(m.status ? err(m.status.code, m.status.message, m.status.cause || undefined) : null)
        break
    }
    this._wakeUp()
  }
}

function uvarint (v) {
  const b = []
  while (v >= 0x80) { b.push((v % 0x80) | 0x80); v = Math.floor(v / 0x80) }
  b.push(v)
  return new Uint8Array(b)
}

function metaPairs (meta) {
  if (!meta) return []
  return Array.isArray(meta) ? meta.map(([k, v]) => [k, String(v)]) : Object.entries(meta).map(([k, v]) => [k, String(v)])
}

function metaGet (pairs, key) {
  const p = pairs.find(([k]) => k === key)
  return p ? p[1] : undefined
}
