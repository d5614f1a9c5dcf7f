package hg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

// runCLI is the journey with the hg binary: clone (or pull into the cached
// working copy), and with push: commit, push and verify with `hg identify`.
// The binary reports failures only as text, so this driver classifies them
// from its stderr; the native driver is the one to trust for classes.
func (j *Journey) runCLI(ctx context.Context, run *probes.Run) error {
	tmp, err := os.MkdirTemp("", "vantage-hg-cli-")
	if err != nil {
		return probes.Internal(err)
	}
	defer os.RemoveAll(tmp)
	rc := filepath.Join(tmp, "hgrc")
	if err := os.WriteFile(rc, []byte(j.hgrc()), 0o600); err != nil {
		return probes.Internal(err)
	}
	hg := func(ctx context.Context, phase, dir string, args ...string) (string, error) {
		return j.hgCmd(ctx, rc, phase, dir, args...)
	}

	dir := filepath.Join(tmp, "clone")
	if j.cfg.Push {
		dir = filepath.Join(j.cacheDir, "cli-work")
	}
	_, statErr := os.Stat(filepath.Join(dir, ".hg"))
	cached := j.cfg.Push && statErr == nil
	if cached {
		step := run.Rec.Step("pull")
		_, err := hg(ctx, "pull", dir, "pull", "-u", j.cfg.URL)
		if err := step.End(err); err != nil {
			return err
		}
	} else {
		step := run.Rec.Step("clone")
		if j.cfg.Push {
			os.RemoveAll(dir)
			if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
				return step.End(probes.Internal(err))
			}
		}
		args := []string{"clone", "-q", j.cfg.URL, dir}
		if !j.cfg.Push {
			args = []string{"clone", "-q", "-U", j.cfg.URL, dir}
		}
		_, err := hg(ctx, "clone", "", args...)
		if err := step.End(err); err != nil {
			return err
		}
	}
	if !j.cfg.Push {
		return nil
	}
	out, err := hg(ctx, "log", dir, "log", "-r", "tip", "-T", "{rev}")
	if err != nil {
		return probes.Internal(err)
	}
	var rev int
	if _, err := fmt.Sscan(out, &rev); err == nil && rev+1 > j.cfg.MaxChangesets {
		return j.tooBig(rev + 1)
	}

	step := run.Rec.Step("push")
	var node string
	for attempt := 1; ; attempt++ {
		step.Set(attribute.Int("vantage.hg.push.attempts", attempt))
		now := time.Now()
		p := filepath.Join(dir, filepath.FromSlash(j.cfg.ProbeFile))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return step.End(probes.Internal(err))
		}
		if err := os.WriteFile(p, probeContent(run, now), 0o644); err != nil {
			return step.End(probes.Internal(err))
		}
		if _, err := hg(ctx, "commit", dir, "commit", "-A", "-u", j.cfg.CommitUser, "-m", "vantage probe run "+run.ID); err != nil {
			os.RemoveAll(dir)
			return step.End(probes.Internal(err))
		}
		node, err = hg(ctx, "log", dir, "log", "-r", ".", "-T", "{node}")
		if err != nil {
			os.RemoveAll(dir)
			return step.End(probes.Internal(err))
		}
		node = strings.TrimSpace(node)
		step.Set(attribute.String("vcs.ref.head.revision", node))
		if j.beforePush != nil {
			j.beforePush(ctx, attempt)
		}
		_, err = hg(ctx, "push", dir, "push", "-r", ".", j.cfg.URL)
		if err == nil {
			break
		}
		if j.retryPush(ctx, err, attempt) {
			// Another agent pushed first: drop the unpushed commit, pull
			// theirs onto the working copy and commit again on the new tip
			// (what pull --rebase does, without needing the extension).
			_, err = hg(ctx, "strip", dir, "debugstrip", "--no-backup", "-r", ".")
			if err == nil {
				_, err = hg(ctx, "pull", dir, "pull", "-u", j.cfg.URL)
			}
			if err == nil {
				continue
			}
		}
		// The unpushed commit would become a second head on the next pull.
		os.RemoveAll(dir)
		return step.End(err)
	}
	step.End(nil)

	if !*j.cfg.Verify {
		return nil
	}
	step = run.Rec.Step("verify")
	err = j.verifyLoop(ctx, step, node, func(ctx context.Context) (bool, error) {
		out, err := hg(ctx, "verify", "", "identify", "-i", "-r", node, j.cfg.URL)
		var pe *probes.Error
		if errors.As(err, &pe) && pe.Type == report.ErrProtocol {
			return false, nil // unknown revision (not yet visible)
		}
		// identify prints the short (12-digit) hash.
		short := strings.TrimSpace(out)
		return err == nil && len(short) >= 12 && strings.HasPrefix(node, short), err
	})
	return step.End(err)
}

// hgrc is the configuration the binary runs with: no user config, and the
// credentials in a file (never on the command line, where ps shows them).
func (j *Journey) hgrc() string {
	var b strings.Builder
	b.WriteString("[ui]\ninteractive = False\n")
	if j.cfg.CAFile != "" {
		fmt.Fprintf(&b, "[web]\ncacerts = %s\n", j.cfg.CAFile)
	}
	if j.cfg.User != "" {
		fmt.Fprintf(&b, "[auth]\nprobe.prefix = %s\nprobe.username = %s\nprobe.password = %s\n",
			j.cfg.URL, j.cfg.User, j.cfg.Password.Value())
	}
	return b.String()
}

// maxCLIOutput bounds what is kept of the binary's output.
const maxCLIOutput = 1 << 20

type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := maxCLIOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (j *Journey) hgCmd(ctx context.Context, rc, phase, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, j.cfg.Hg, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HGRCPATH="+rc, "HGPLAIN=1", "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out, errb boundedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	msg := strings.TrimSpace(errb.String())
	if len(msg) > 300 {
		msg = msg[len(msg)-300:]
	}
	e := fmt.Errorf("hg %s: %w: %s", phase, err, msg)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", probes.Internal(e) // the binary could not run
	}
	switch {
	case strings.Contains(msg, "HTTP Error 401"), strings.Contains(msg, "HTTP Error 403"), strings.Contains(msg, "authorization failed"):
		return "", probes.Wrap(report.ErrAuth, e)
	case strings.Contains(msg, "Connection refused"):
		return "", probes.Wrap(report.ErrConnect, e)
	case strings.Contains(msg, "HTTP Error 5"):
		return "", probes.Wrap(report.ErrHTTP5xx, e)
	case phase == "push" && (strings.Contains(msg, "remote repository changed while pushing") ||
		strings.Contains(msg, "push creates new remote head")):
		// Heads moved after our pull: during the push (error:pushraced,
		// "push failed: remote repository changed while pushing") or
		// before it (the client's own new-head check).
		return "", probes.Wrap(report.ErrPushRejected, fmt.Errorf("%w: %w", wire.ErrPushRaced, e))
	case phase == "push":
		return "", probes.Wrap(report.ErrPushRejected, e)
	case phase == "commit" || phase == "log" || phase == "strip":
		return "", probes.Internal(e)
	}
	return "", probes.Wrap(report.ErrProtocol, e)
}
