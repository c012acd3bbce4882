package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"google.golang.org/protobuf/proto"
)

// ---- echo: the reference ----
//
// A raw TCP echo of the same bytes: the request's protobuf encoding, made
// once, behind a 4-byte length; the server sends each frame back as it is.
// No codec, no handler, no routing: what the network and the syscalls cost,
// the floor any RPC system stands on. Callers share a connection the way
// they share a session: frames go out in batches, and replies, which come
// back in order, go to the callers waiting in line.
//
// echo+pb is the same echo with the scenario's protobuf work and nothing
// else: the caller marshals its request and unmarshals the reply, the server
// unmarshals, sets the two fields and marshals. It is the ceiling for any
// system that carries this message with this codec.

type echoSystem struct {
	pb bool // do the scenario's protobuf work on both sides
}

func (e echoSystem) serve(ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			r, w := bufio.NewReaderSize(c, 32<<10), bufio.NewWriterSize(c, 32<<10)
			var head [4]byte
			buf := make([]byte, 0, 1024)
			for {
				if _, err := io.ReadFull(r, head[:]); err != nil {
					return
				}
				n := binary.BigEndian.Uint32(head[:])
				if n > 1<<20 {
					return
				}
				buf = append(buf[:0], make([]byte, n)...)
				if _, err := io.ReadFull(r, buf); err != nil {
					return
				}
				if e.pb {
					var m benchpb.BenchmarkMessage
					if proto.Unmarshal(buf, &m) != nil {
						return
					}
					if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], handle(&m)); err != nil {
						return
					}
					binary.BigEndian.PutUint32(head[:], uint32(len(buf)))
				}
				w.Write(head[:])
				w.Write(buf)
				if r.Buffered() == 0 { // nothing more has come: send the batch
					if w.Flush() != nil {
						return
					}
				}
			}
		}()
	}
}

type echoConn struct {
	conn net.Conn
	mu   sync.Mutex
	out  []byte       // frames waiting to be written
	busy bool         // a caller is writing out
	line []echoWaiter // callers waiting, in the order their frames went out
	err  error
}

// An echoWaiter is a caller waiting for its reply.
type echoWaiter struct {
	done chan error
	resp *benchpb.BenchmarkMessage // echo+pb: where the reply is unmarshaled
}

type echoClient struct {
	pb    bool
	conns []*echoConn
	frame []byte // the request, framed
	wg    sync.WaitGroup
}

func (e echoSystem) dial(addr string, n int) (client, error) {
	body, err := proto.Marshal(benchpb.New())
	if err != nil {
		return nil, err
	}
	c := &echoClient{pb: e.pb, frame: binary.BigEndian.AppendUint32(nil, uint32(len(body)))}
	c.frame = append(c.frame, body...)
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			c.close()
			return nil, err
		}
		ec := &echoConn{conn: nc}
		c.conns = append(c.conns, ec)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			ec.readReplies(c.pb, c.frame[4:])
		}()
	}
	return c, nil
}

// readReplies hands each reply to the caller at the head of the line.
func (ec *echoConn) readReplies(pb bool, want []byte) {
	r := bufio.NewReaderSize(ec.conn, 32<<10)
	var head [4]byte
	got := make([]byte, 0, 1024)
	for {
		_, err := io.ReadFull(r, head[:])
		if n := binary.BigEndian.Uint32(head[:]); err == nil && n > 1<<20 {
			err = fmt.Errorf("echo: a reply of %d bytes", n)
		} else if err == nil {
			got = append(got[:0], make([]byte, n)...)
			_, err = io.ReadFull(r, got)
		}
		if err == nil && !pb && !bytes.Equal(got, want) {
			err = fmt.Errorf("echo: the reply differs from the request")
		}
		ec.mu.Lock()
		if err != nil {
			ec.err = err
			for _, w := range ec.line {
				w.done <- err
			}
			ec.line = nil
			ec.mu.Unlock()
			return
		}
		w := ec.line[0]
		ec.line = ec.line[1:]
		ec.mu.Unlock()
		if pb {
			err = proto.Unmarshal(got, w.resp)
		}
		w.done <- err
	}
}

var echoWaiters = sync.Pool{New: func() any { return make(chan error, 1) }}

func (c *echoClient) call(i int, req, resp *benchpb.BenchmarkMessage) error {
	ec := c.conns[i]
	frame := c.frame
	if c.pb {
		b, err := (proto.MarshalOptions{}).MarshalAppend(make([]byte, 4, 1024), req)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		frame = b
	}
	done := echoWaiters.Get().(chan error)
	ec.mu.Lock()
	if ec.err != nil {
		err := ec.err
		ec.mu.Unlock()
		return err
	}
	ec.out = append(ec.out, frame...)
	ec.line = append(ec.line, echoWaiter{done, resp})
	if !ec.busy { // write out until nobody has added more
		ec.busy = true
		for len(ec.out) > 0 {
			batch := ec.out
			ec.out = nil
			ec.mu.Unlock()
			_, err := ec.conn.Write(batch)
			ec.mu.Lock()
			if err != nil && ec.err == nil {
				ec.err = err
			}
		}
		ec.busy = false
	}
	ec.mu.Unlock()
	err := <-done
	echoWaiters.Put(done)
	if err == nil && !c.pb {
		resp.Field1 = proto.String("OK") // the bytes came back as sent; nothing is decoded
	}
	return err
}

func (c *echoClient) close() {
	for _, ec := range c.conns {
		ec.conn.Close()
	}
	c.wg.Wait()
}
