package lab

// This file runs the Mercurial peer: a real `hg serve` on loopback.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// HgServeOptions configures StartHgServe.
type HgServeOptions struct {
	// Repo is the repository to serve; empty means a new empty repository
	// in a temporary directory (removed on Close).
	Repo string
	// Config are extra "section.key=value" settings passed with --config,
	// after the defaults that allow anonymous push over plain HTTP
	// (web.push_ssl=False, web.allow-push=*). Later settings win.
	Config []string
	// Hg is the hg binary ("hg" from PATH when empty).
	Hg string
	// StartTimeout bounds the wait until the server answers (10s if zero).
	StartTimeout time.Duration
}

// HgServe is a running `hg serve` on 127.0.0.1.
type HgServe struct {
	// URL is the repository's URL (http://127.0.0.1:PORT/).
	URL string
	// Repo is the served repository's directory.
	Repo string
	// AccessLog and ErrorLog are the server's log files.
	AccessLog, ErrorLog string

	cmd     *exec.Cmd
	tmp     string
	done    chan struct{}
	close   sync.Once
	proxy   http.Handler
	waitErr error
}

// StartHgServe launches `hg serve` on a free loopback port and waits until
// it answers `capabilities`. Close stops it (the whole process group).
func StartHgServe(ctx context.Context, o HgServeOptions) (*HgServe, error) {
	hg := o.Hg
	if hg == "" {
		hg = "hg"
	}
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	tmp, err := os.MkdirTemp("", "vantage-hgserve-")
	if err != nil {
		return nil, err
	}
	repo := o.Repo
	if repo == "" {
		repo = filepath.Join(tmp, "repo")
		if out, err := exec.CommandContext(ctx, hg, "init", repo).CombinedOutput(); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("hg init: %w: %s", err, out)
		}
	}
	// A port taken between our probe and hg's bind fails the start; retry a few times.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startHg(ctx, hg, repo, tmp, o.Config, timeout)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	os.RemoveAll(tmp)
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startHg(ctx context.Context, hg, repo, tmp string, extra []string, timeout time.Duration) (*HgServe, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &HgServe{
		URL:       fmt.Sprintf("http://127.0.0.1:%d/", port),
		Repo:      repo,
		AccessLog: filepath.Join(tmp, "access.log"),
		ErrorLog:  filepath.Join(tmp, "error.log"),
		tmp:       tmp,
		done:      make(chan struct{}),
	}
	args := []string{"serve", "-R", repo, "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"-A", s.AccessLog, "-E", s.ErrorLog,
		"--config", "web.push_ssl=False", "--config", "web.allow-push=*"}
	for _, c := range extra {
		args = append(args, "--config", c)
	}
	// Not CommandContext: the server outlives this call and is stopped by Close.
	s.cmd = exec.Command(hg, args...)
	// HGDEMANDIMPORT=disable: hg's lazy imports are not thread-safe, and
	// hg serve answers concurrent first requests with 500s without it
	// ("module 'mercurial.pushkey' has no attribute 'list'").
	s.cmd.Env = append(os.Environ(), "HGPLAIN=1", "HGRCPATH=", "HGDEMANDIMPORT=disable")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting hg serve: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	u, _ := url.Parse(s.URL)
	s.proxy = httputil.NewSingleHostReverseProxy(u)

	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"?cmd=capabilities", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("hg serve exited: %v: %s", s.waitErr, stderr.String())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("hg serve did not answer within %s: %s", timeout, stderr.String())
		}
	}
}

// Handler returns a reverse proxy to the server, so that fault middleware
// can sit between a client and hg serve.
func (s *HgServe) Handler() http.Handler { return s.proxy }

func (s *HgServe) stop() {
	if s.cmd.Process != nil {
		// The negative pid addresses the process group hg serve leads.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
}

// Close stops the server and removes its temporary directory (and the
// repository, when StartHgServe created it).
func (s *HgServe) Close() error {
	s.close.Do(func() {
		s.stop()
		if err := os.RemoveAll(s.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.waitErr = err
		}
	})
	return nil
}
