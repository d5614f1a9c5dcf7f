package lab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Route sends requests whose path starts with Prefix to Handler; Protocol
// names the traffic for fault matching (ProtoGitHTTP, ProtoHg, …).
type Route struct {
	Prefix   string
	Protocol string
	Handler  http.Handler
}

// Product is what the edges put in front of: HTTP routes by path prefix and
// the address of the product's SSH server.
type Product struct {
	Routes  []Route
	SSHAddr string
}

func (p *Product) route(path string) (Route, bool) {
	best := Route{}
	found := false
	for _, r := range p.Routes {
		if strings.HasPrefix(path, r.Prefix) && len(r.Prefix) >= len(best.Prefix) {
			best, found = r, true
		}
	}
	return best, found
}

// Edge is one entry point into the product, as a region's load balancer
// would be: an HTTP listener and an SSH listener on loopback, each passing
// traffic through the fault table. Agents of a region (or one agent, for
// agent-local faults) reach the product only through their edge.
type Edge struct {
	Name   string
	Region string
	// HTTPAddr and SSHAddr are the listening addresses (host:port).
	HTTPAddr string
	SSHAddr  string

	product *Product
	faults  *FaultTable
	srv     *http.Server
	httpLn  net.Listener
	sshLn   net.Listener
	closing chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

// StartEdge listens on two loopback ports and serves until Close.
func StartEdge(name, region string, p *Product, faults *FaultTable) (*Edge, error) {
	return StartEdgeOn("127.0.0.1", name, region, p, faults)
}

// StartEdgeOn is StartEdge listening on host (an IP address of this
// machine, e.g. a veth address facing a network namespace).
func StartEdgeOn(host, name, region string, p *Product, faults *FaultTable) (*Edge, error) {
	e := &Edge{Name: name, Region: region, product: p, faults: faults,
		closing: make(chan struct{}), conns: map[net.Conn]bool{}}
	hl, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	e.httpLn = &faultListener{Listener: hl, edge: e}
	e.HTTPAddr = hl.Addr().String()
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		_ = e.srv.Serve(e.httpLn)
	}()
	if p.SSHAddr != "" {
		sl, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			e.Close()
			return nil, err
		}
		e.sshLn = sl
		e.SSHAddr = sl.Addr().String()
		e.wg.Add(1)
		go e.serveSSH()
	}
	return e, nil
}

// Close stops the listeners and every connection in flight.
func (e *Edge) Close() error {
	select {
	case <-e.closing:
		return nil
	default:
	}
	close(e.closing)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	_ = e.srv.Close()
	if e.sshLn != nil {
		_ = e.sshLn.Close()
	}
	e.mu.Lock()
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// ServeHTTP applies the faults that match the request's protocol, then
// hands it to the product route.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := e.product.route(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if f, ok := e.faults.Match(e.Region, e.Name, rt.Protocol,
		FaultRefuse, FaultReset, FaultStall, FaultLatency, FaultHTTPError); ok {
		switch f.Kind {
		case FaultRefuse, FaultReset:
			resetHTTP(w)
			return
		case FaultStall:
			select {
			case <-r.Context().Done():
			case <-e.closing:
			}
			return
		case FaultLatency:
			if !e.sleep(r.Context(), f.Delay) {
				return
			}
		case FaultHTTPError:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(f.Status)
			_, _ = io.WriteString(w, "lab: injected fault "+f.ID+"\n")
			return
		}
	}
	rt.Handler.ServeHTTP(w, r)
}

func (e *Edge) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-e.closing:
		return false
	}
}

// resetHTTP takes the connection over and closes it with a TCP reset.
func resetHTTP(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	rst(c)
}

// rst closes c so that the peer sees ECONNRESET rather than EOF.
func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// faultListener resets new connections while a protocol-wide refuse fault
// matches the edge.
type faultListener struct {
	net.Listener
	edge *Edge
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if _, refuse := l.edge.faults.Match(l.edge.Region, l.edge.Name, "", FaultRefuse); refuse {
			rst(c)
			continue
		}
		return c, nil
	}
}

func (e *Edge) track(c net.Conn, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if on {
		e.conns[c] = true
	} else {
		delete(e.conns, c)
	}
}

func (e *Edge) serveSSH() {
	defer e.wg.Done()
	for {
		c, err := e.sshLn.Accept()
		if err != nil {
			return
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.proxySSH(c)
		}()
	}
}

// resetAfter is how many bytes a reset fault lets through before the reset.
const resetAfter = 512

func (e *Edge) proxySSH(c net.Conn) {
	e.track(c, true)
	defer e.track(c, false)
	defer c.Close()
	f, faulty := e.faults.Match(e.Region, e.Name, ProtoGitSSH, FaultRefuse, FaultReset, FaultStall, FaultLatency)
	if faulty {
		switch f.Kind {
		case FaultRefuse:
			rst(c)
			return
		case FaultStall:
			// Accept and never speak: the client's deadline must end it.
			buf := make([]byte, 1024)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		case FaultLatency:
			if !e.sleep(context.Background(), f.Delay) {
				return
			}
		}
	}
	up, err := net.DialTimeout("tcp", e.product.SSHAddr, 5*time.Second)
	if err != nil {
		rst(c)
		return
	}
	e.track(up, true)
	defer e.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		var src io.Reader = up
		if faulty && f.Kind == FaultReset {
			src = io.LimitReader(up, resetAfter)
		}
		_, err := io.Copy(c, src)
		if faulty && f.Kind == FaultReset && !errors.Is(err, net.ErrClosed) {
			rst(c)
		} else if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}
