package campaign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Procs runs the fleet's processes (aggregator, probers), each in its own
// process group with its output in a log file, and kills whatever is left
// on Close.
type Procs struct {
	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// NewProcs returns an empty process table.
func NewProcs() *Procs { return &Procs{procs: map[string]*proc{}} }

// Start starts bin with args under name, appending its output to logPath.
// A name already running is an error.
func (p *Procs) Start(name, bin string, args []string, env []string, logPath string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.procs[name]; ok && !old.exited() {
		return fmt.Errorf("%s is already running", name)
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	pr := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		out.Close()
		close(pr.done)
	}()
	p.procs[name] = pr
	return nil
}

func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// Running reports whether name is running.
func (p *Procs) Running(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.procs[name]
	return ok && !pr.exited()
}

// Signal sends sig to name's process group and, when wait > 0, waits up to
// wait for it to exit, then kills it.
func (p *Procs) Signal(name string, sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	pr, ok := p.procs[name]
	p.mu.Unlock()
	if !ok || pr.exited() {
		return fmt.Errorf("%s is not running", name)
	}
	_ = syscall.Kill(-pr.cmd.Process.Pid, sig)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-pr.done:
		return nil
	case <-t.C:
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
		<-pr.done
		return fmt.Errorf("%s did not stop within %s; killed", name, wait)
	}
}

// Wait waits until name exits or ctx ends.
func (p *Procs) Wait(ctx context.Context, name string) error {
	p.mu.Lock()
	pr, ok := p.procs[name]
	p.mu.Unlock()
	if !ok {
		return errors.New("no such process " + name)
	}
	select {
	case <-pr.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops every process: SIGTERM, then SIGKILL after a grace period.
func (p *Procs) Close() {
	p.mu.Lock()
	var names []string
	for n, pr := range p.procs {
		if !pr.exited() {
			names = append(names, n)
		}
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Signal(n, syscall.SIGTERM, 10*time.Second)
		}()
	}
	wg.Wait()
}
