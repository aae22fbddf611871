package ingress

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// conns tracks the HTTP connections so that a shutdown can close at once those not
// serving a request: idle keep-alive ones, and new ones that have not sent a byte yet.
// fasthttp counts a new connection as active while it waits for its first request, so
// its own shutdown waits for it until the read timeout (measured: a spare connection the
// Go client dialed held a SIGTERM for ~30 s, time the engine's handover needs). It is
// safe for concurrent use.
type conns struct {
	mu    sync.Mutex
	state map[*countedConn]fasthttp.ConnState
}

// countedConn is an accepted connection that knows whether anything was read from it.
type countedConn struct {
	net.Conn
	read atomic.Bool
}

// Read reads from the connection, noting that bytes arrived.
func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Store(true)
	}
	return n, err
}

// listener wraps the accepted connections of ln.
type listener struct{ net.Listener }

// Accept returns the next connection, wrapped.
func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c}, nil
}

// track is the fasthttp ConnState hook.
func (t *conns) track(c net.Conn, st fasthttp.ConnState) {
	cc, ok := c.(*countedConn)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == nil {
		t.state = map[*countedConn]fasthttp.ConnState{}
	}
	switch st {
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		delete(t.state, cc)
	default:
		t.state[cc] = st
	}
}

// closeQuiet closes every connection that is not serving a request.
func (t *conns) closeQuiet() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, st := range t.state {
		if st == fasthttp.StateIdle || st == fasthttp.StateNew || !c.read.Load() {
			_ = c.Close() // the client sees a closed keep-alive connection and dials again
			delete(t.state, c)
		}
	}
}
