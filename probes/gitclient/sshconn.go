package gitclient

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// sshRelay puts the operation's deadline on the SSH connection itself.
// go-git's SSH transport dials by address and ignores contexts (its
// handshake has no deadline at all), so the client dials the server here,
// with the context, sets the context's deadline on that connection, and
// lets go-git connect to a one-shot loopback listener that relays to it.
// When the deadline passes or the context ends, the server connection
// fails, the relay closes both sides, and every go-git read returns.
//
// go-git only ever sees the loopback side, so a server that resets the
// connection would reach it as a bare EOF; the relay keeps the server
// connection's own error (UpstreamErr) for classification.
type sshRelay struct {
	up       *upstream
	ln       net.Listener
	timedOut atomic.Bool
	stop     func() bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	down     net.Conn
	closed   bool
}

// dialRelay connects to addr under ctx and starts the relay.
func dialRelay(ctx context.Context, addr string) (*sshRelay, error) {
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = up.SetDeadline(dl)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		up.Close()
		return nil, err
	}
	r := &sshRelay{up: &upstream{Conn: up}, ln: ln}
	r.stop = context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.timedOut.Store(true)
		}
		// A past deadline wakes every blocked read and write at once.
		_ = up.SetDeadline(time.Unix(1, 0))
		r.Close()
	})
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// Port is the loopback port go-git must connect to.
func (r *sshRelay) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// RemoteAddr is the server's address, for host key checks.
func (r *sshRelay) RemoteAddr() net.Addr { return r.up.RemoteAddr() }

// TimedOut reports whether the connection failed on its deadline.
func (r *sshRelay) TimedOut() bool { return r.timedOut.Load() }

// UpstreamErr is the first error reading from or writing to the server
// connection (nil after a clean end, or when only the relay closed it).
func (r *sshRelay) UpstreamErr() error { return r.up.Err() }

// upstream is the server connection; it keeps the first error it returned.
type upstream struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (u *upstream) Read(p []byte) (int, error) {
	n, err := u.Conn.Read(p)
	u.note(err)
	return n, err
}

func (u *upstream) Write(p []byte) (int, error) {
	n, err := u.Conn.Write(p)
	u.note(err)
	return n, err
}

func (u *upstream) note(err error) {
	// EOF is the server's clean end; net.ErrClosed is the relay's own Close.
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
}

// Err returns the first error noted.
func (u *upstream) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (r *sshRelay) serve() {
	defer r.wg.Done()
	down, err := r.ln.Accept()
	r.ln.Close()
	if err != nil {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		down.Close()
		return
	}
	r.down = down
	r.mu.Unlock()
	var once sync.Once
	closeBoth := func() { once.Do(func() { r.up.Close(); down.Close() }) }
	pipe := func(dst io.Writer, src io.Reader) {
		defer r.wg.Done()
		_, err := io.Copy(dst, src)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.timedOut.Store(true)
		}
		closeBoth()
	}
	r.wg.Add(2)
	go pipe(down, r.up)
	go pipe(r.up, down)
}

// Close ends the relay and waits for its goroutines.
func (r *sshRelay) Close() {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	down := r.down
	r.mu.Unlock()
	if !first {
		return
	}
	r.ln.Close()
	r.up.Close()
	if down != nil {
		down.Close()
	}
}

// wait stops the context hook and waits for the relay goroutines; call it
// after Close, outside the AfterFunc.
func (r *sshRelay) wait() {
	r.stop()
	r.Close()
	r.wg.Wait()
}

func hostPort(host string, port int) string {
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
