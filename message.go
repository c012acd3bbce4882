package tp

import "github.com/seed-a9a850dd/tp/socket"

// Message is one CALL, REPLY or PUSH as it crosses the wire: what message
// settings adjust, hooks see and handshakes exchange. It is socket's
// Message, named here so that the API of this package reads on its own.
type Message = socket.Message

// Meta is a message's ordered key/value pairs, like HTTP headers.
type Meta = socket.Meta
