// Package tp is symmetric peer-to-peer RPC in the teleport tradition.
//
// One Peer type is both server and client. It wraps any net.Conn into a
// Session, and once connected both ends are equal: either side can CALL the
// other and wait for a REPLY, PUSH to it one way, or open a Stream to it:
// messages both ways, with flow control of their own, beside the calls.
// A caller that gives up tells the other end, whose handler's context
// ends.
//
// The layers below the peer are packages of their own:
//
//	socket   a net.Conn that reads and writes whole messages, with
//	         coalesced writes and a read limit
//	proto/   how a message is framed: rawproto (the default), jsonproto,
//	         pbproto, or your own socket.Proto
//	codec    how a body is encoded: json, protobuf, plain, form
//	xfer/    byte filters over a packed message: gzip, md5
//	status   the code, message and cause of every failure
package tp
