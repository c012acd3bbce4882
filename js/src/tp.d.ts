// Types of tp.js, the browser (and Node) client of tp.

/** tp's status codes, as Go's tp.Code. */
export declare const Code: Readonly<{
  OK: 0; Unknown: 1; ConnClosed: 2; DialFailed: 3; WriteFailed: 4; BadMessage: 5
  NotFound: 6; Timeout: 7; Overloaded: 8; Internal: 9; Unauthorized: 10; TooLarge: 11
  Canceled: 12; Unsupported: 13; InvalidArgument: 14; ShuttingDown: 15; FailedPrecondition: 16
}>

/** Every failure: a tp status code and message. */
export declare class TpError extends Error {
  constructor (code: number, message: string, cause?: unknown)
  readonly code: number
  /** The reply's meta, for an error the server answered. */
  readonly meta?: Record<string, string>
}

/** A body codec: its wire id, and how values become bytes and back. */
export interface Codec {
  id: number
  encode (v: unknown): Uint8Array
  decode (b: Uint8Array): unknown
}

export declare const codecs: {
  json: Codec
  plain: Codec
  /** Carries bytes: pass a message's toBinary() (protobuf-es) or a Uint8Array; get a Uint8Array back. */
  protobuf: Codec
}

/** A protobuf codec for a page's own message classes (protobuf-es). */
export declare function protobuf<M> (encode: (m: M) => Uint8Array, decode: (b: Uint8Array) => M): Codec

export type Meta = Record<string, string | number> | Array<[string, string | number]>
export type CodecName = 'json' | 'plain' | 'protobuf' | Codec

export interface DialOptions {
  /** The first connection's bound, ms (10000). */
  timeout?: number
  /** Reconnect after a connection ends (true). */
  reconnect?: boolean
  /** The backoff between reconnects, ms (100 to 5000). */
  minDelay?: number
  maxDelay?: number
  /** The largest frame read, bytes (8 MiB). */
  maxFrame?: number
  /** Meta sent with every call and push. */
  meta?: Meta
  /** A WebSocket class, where there is no global one. */
  WebSocket?: typeof WebSocket
}

export interface CallOptions {
  /** ms; the deadline travels to the handler, whose context ends with it. */
  timeout?: number
  meta?: Meta
  /** Aborting cancels the call, and the handler's context at the server. */
  signal?: AbortSignal
  codec?: CodecName
  /** Compress the request with CompressionStream('gzip'). */
  gzip?: boolean
}

export interface HandlerContext {
  method: string
  meta: Record<string, string>
  /** Aborted by the caller's cancel, its deadline, or the connection's end. */
  signal: AbortSignal
  isCall: boolean
  /** Sets a meta pair on the reply. */
  setMeta (key: string, value: string | number): void
}

/** A flow of messages both ways, with Go's flow control. */
export declare class Stream implements AsyncIterable<unknown> {
  readonly id: number
  readonly method: string
  readonly signal: AbortSignal
  /** The meta the stream was opened with (a stream the server opened). */
  header: Record<string, string>
  /** The meta the other end sent with its last frame. */
  trailer: Record<string, string>
  /** Sends v, waiting while the reader has its whole window unread. */
  send (v: unknown): Promise<void>
  /** The next message, or done once the other end closed its side. */
  recv (): Promise<{ value: unknown, done: boolean }>
  [Symbol.asyncIterator] (): AsyncIterator<unknown>
  /** This end sends no more; meta is the trailer. */
  closeSend (meta?: Meta): void
  /** Ends the stream both ways; the other end sees Canceled. */
  close (): void
  /** Ends the stream both ways with err's code. */
  reset (err?: TpError | Error): void
}

export declare class Peer extends EventTarget {
  /** Serves the server's CALLs and PUSHes to method; a CALL's reply is fn's result. */
  handle (method: string, fn: (arg: any, ctx: HandlerContext) => unknown): void
  /** Serves streams the server opens to method. */
  handleStream (method: string, fn: (st: Stream, ctx: { method: string, meta: Record<string, string>, signal: AbortSignal }) => unknown): void
  call<R = any> (method: string, arg?: unknown, opts?: CallOptions & { full?: false }): Promise<R>
  call<R = any> (method: string, arg: unknown, opts: CallOptions & { full: true }): Promise<{ value: R, meta: Record<string, string> }>
  push (method: string, arg?: unknown, opts?: CallOptions): Promise<void>
  openStream (method: string, opts?: { timeout?: number, meta?: Meta, signal?: AbortSignal, codec?: CodecName }): Promise<Stream>
  /** Ends the peer: pending calls fail, and it does not reconnect. */
  close (): void
  /** 'open', 'close' (detail: the TpError), 'reconnect', 'drain' (the server shuts down; the peer moves on). */
  addEventListener (type: 'open' | 'close' | 'reconnect' | 'drain', listener: (ev: Event & { detail?: TpError }) => void, options?: boolean | AddEventListenerOptions): void
}

/** Connects to a Go peer's tp WebSocket URL; resolves once it said hello. */
export declare function dial (url: string, opts?: DialOptions): Promise<Peer>
