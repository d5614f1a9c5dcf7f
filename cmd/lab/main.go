// Command lab runs the local product that Vantage's tests and demo probe:
// real git (HTTP and SSH) and Mercurial servers, the Bitbucket-shaped
// branch and Pipelines APIs and a small HTTP API, reached through one edge
// per agent, with a control API to inject faults.
//
//	lab serve [-regions eu,us,ap] [-agents-per-region 2] [-dir DIR] [-state FILE] [-control ADDR]
//	lab fault add -control URL -kind K [-region R] [-edge E] [-protocol P] [-status N] [-rate F] [-delay D]
//	lab fault list -control URL
//	lab fault clear -control URL [-id ID]
//	lab demo [-bin DIR] [-dir DIR] [-interval 5s] [-keep]
//	lab campaign [-seed N] [-faults 30] [-bin DIR] [-dir DIR] [-interval 5s]
//	lab version
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/pkg/version"
)

const usage = `usage:
  lab serve [-regions eu,us,ap] [-agents-per-region 2] [-dir DIR] [-state FILE] [-control 127.0.0.1:7400] [-no-hg]
  lab fault add -control URL -kind KIND [-region R] [-edge E] [-protocol P] [-status N] [-rate F] [-delay D]
  lab fault list -control URL
  lab fault clear -control URL [-id ID]
  lab demo [-bin DIR] [-dir DIR] [-interval 5s] [-keep]
  lab campaign [-seed N] [-faults 30] [-bin DIR] [-dir DIR] [-interval 5s] [-max-concurrent 4]
  lab version`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "lab", version.String())
		return 0
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "fault":
		err = fault(ctx, args[1:], stdout, stderr)
	case "demo":
		err = demo(ctx, args[1:], stdout, stderr)
	case "campaign":
		err = runCampaign(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "lab:", err)
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "lab:", err)
		return 1
	}
	return 0
}

// usageError is a malformed command line.
type usageError string

func (e usageError) Error() string { return string(e) }

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	regions := fs.String("regions", "eu,us,ap", "comma-separated regions, each with its own edges")
	perRegion := fs.Int("agents-per-region", 2, "edges (one per agent) in each region")
	dir := fs.String("dir", "", "data directory (default: a temporary directory removed at exit)")
	statePath := fs.String("state", "", "where to write the state JSON (default DIR/state.json)")
	control := fs.String("control", "127.0.0.1:7400", "control API listen address (loopback)")
	noHg := fs.Bool("no-hg", false, "run without Mercurial")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("serve takes no arguments")
	}
	if *perRegion < 1 {
		return usageError("-agents-per-region must be at least 1")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "vantage-lab-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	if *statePath == "" {
		*statePath = filepath.Join(*dir, "state.json")
	}
	l, err := lab.Start(ctx, lab.Options{Dir: *dir, Regions: splitList(*regions), AgentsPerRegion: *perRegion,
		ControlAddr: *control, NoHg: *noHg, Log: log})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.WriteState(*statePath); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	defer os.Remove(*statePath)
	for _, e := range l.Edges {
		log.Info("edge", "name", e.Name, "region", e.Region, "http", "http://"+e.HTTPAddr, "ssh", e.SSHAddr)
	}
	log.Info("lab ready", "control", l.ControlURL, "state", *statePath)
	<-ctx.Done()
	log.Info("lab stopping")
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// maxControlAnswer bounds what the CLI reads from the control API.
const maxControlAnswer = 1 << 20

func fault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("fault needs add, list or clear")
	}
	fs := flag.NewFlagSet("fault "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	control := fs.String("control", "http://127.0.0.1:7400", "control API base URL")
	var f lab.Fault
	var kind string
	var id string
	switch args[0] {
	case "add":
		fs.StringVar(&kind, "kind", "", "refuse, reset, stall, latency, http_error, replica_lag or queue_stall")
		fs.StringVar(&f.Region, "region", "", "only this region's edges (default: every region)")
		fs.StringVar(&f.Edge, "edge", "", "only this edge, i.e. one agent (agent-local fault)")
		fs.StringVar(&f.Protocol, "protocol", "", "only git-http, git-ssh, hg, pipelines or api (default: all)")
		fs.IntVar(&f.Status, "status", 0, "http_error: the status to answer (default 503)")
		fs.Float64Var(&f.Rate, "rate", 0, "http_error: fraction of requests in [0,1] (default 1)")
		fs.DurationVar(&f.Delay, "delay", 0, "latency and replica_lag: the delay")
	case "list":
	case "clear":
		fs.StringVar(&id, "id", "", "remove only this fault (default: all)")
	default:
		return usageError(fmt.Sprintf("unknown fault command %q", args[0]))
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("fault " + args[0] + " takes no arguments")
	}
	base, err := url.Parse(*control)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usageError("-control must be an http:// URL")
	}
	c := &controlClient{base: strings.TrimRight(*control, "/"), hc: &http.Client{Timeout: 10 * time.Second}}
	switch args[0] {
	case "add":
		if kind == "" {
			return usageError("fault add needs -kind")
		}
		f.Kind = lab.FaultKind(kind)
		if err := f.Validate(); err != nil {
			return usageError(err.Error())
		}
		body, _ := json.Marshal(f)
		return c.do(ctx, http.MethodPost, "/faults", body, http.StatusCreated, stdout)
	case "list":
		return c.do(ctx, http.MethodGet, "/faults", nil, http.StatusOK, stdout)
	default:
		path := "/faults"
		if id != "" {
			path += "/" + url.PathEscape(id)
		}
		return c.do(ctx, http.MethodDelete, path, nil, http.StatusNoContent, stdout)
	}
}

// controlClient talks to the lab's control API.
type controlClient struct {
	base string
	hc   *http.Client
}

// do sends one request and copies a successful answer to out.
func (c *controlClient) do(ctx context.Context, method, path string, body []byte, want int, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxControlAnswer))
	if err != nil {
		return fmt.Errorf("control API: reading the answer: %w", err)
	}
	if resp.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("control API: %s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("control API: %s", resp.Status)
	}
	_, err = out.Write(b)
	return err
}
