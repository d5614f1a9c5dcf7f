package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/pkg/fleet"
	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// Options configures a Stack.
type Options struct {
	// Dir holds every config, data directory and log. Required.
	Dir string
	// BinDir holds the prober and aggregator binaries. Required.
	BinDir string
	// Regions and AgentsPerRegion shape the fleet (default eu,us,ap × 2).
	Regions         []string
	AgentsPerRegion int
	// Interval is every journey's schedule interval (default 5s); the
	// journey timeout is 80 % of it.
	Interval time.Duration
	// Alertmanager is the prometheus-alertmanager binary; empty runs
	// without it.
	Alertmanager string
	// AlertmanagerConfig is the Alertmanager config file to load (the one
	// shipped in deploy/).
	AlertmanagerConfig string
	// EdgeHost is the IP address the lab's edges listen on; AggregatorHost
	// the one the aggregator's listeners (API, OTLP, gossip) bind. Both
	// default to 127.0.0.1. A chaos test puts them on the host side of the
	// veths its namespaced probers reach.
	EdgeHost, AggregatorHost string
	// Placement says where each region's probers run (by region); a region
	// without an entry runs on loopback of this host.
	Placement map[string]Placement
	Log       *slog.Logger
}

// Placement puts a region's probers somewhere else than this host's
// loopback, e.g. in a network namespace.
type Placement struct {
	// Host is the IP address the probers' gossip and HTTP listeners bind.
	Host string
	// Wrap is put before the prober command, e.g. ip netns exec NAME.
	Wrap []string
	// FirstPort: the region's probers listen on consecutive ports from
	// FirstPort (gossip, then HTTP, per agent) instead of ports found free
	// on this host, which cannot see inside a namespace. Use it only where
	// nothing else listens (a namespace the caller just created).
	FirstPort int
}

// Agent is one prober of the stack.
type Agent struct {
	Name, Region string
	Config       string
	// Listen is the agent's HTTP address; Gossip its gossip address.
	Listen, Gossip string
	// ResultsFile is the agent's jsonl export: every Result it wrote.
	ResultsFile string
	wrap        []string
}

// Stack is a whole fleet on this machine: the lab product in-process, an
// aggregator and probers as real processes gossiping on loopback, and a
// webhook recorder receiving the aggregator's alerts.
type Stack struct {
	Lab    *lab.Lab
	Procs  *Procs
	Rec    *Recorder
	Agents []Agent
	// AggregatorURL is the aggregator's HTTP base URL (status page, API);
	// AggregatorGRPC its OTLP gRPC address, AggregatorGossip its gossip
	// address; AggregatorDir its data directory (dedup window, state).
	AggregatorURL, AggregatorGRPC, AggregatorGossip, AggregatorDir string
	// AlertmanagerURL is set when Alertmanager runs.
	AlertmanagerURL string

	o       Options
	recSrv  *http.Server
	aggConf string
	keyFile string
	log     *slog.Logger
}

func freeAddr() (string, error) { return freeAddrOn("127.0.0.1") }

func freeAddrOn(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freeAddrs(host string, n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		a, err := freeAddrOn(host)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Start builds the configs and starts the lab, Alertmanager (when given),
// the aggregator and every prober. Close stops them all.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Dir == "" || o.BinDir == "" {
		return nil, errors.New("campaign: Dir and BinDir are required")
	}
	if len(o.Regions) == 0 {
		o.Regions = []string{"eu", "us", "ap"}
	}
	if o.AgentsPerRegion == 0 {
		o.AgentsPerRegion = 2
	}
	if o.Interval == 0 {
		o.Interval = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.EdgeHost == "" {
		o.EdgeHost = "127.0.0.1"
	}
	if o.AggregatorHost == "" {
		o.AggregatorHost = "127.0.0.1"
	}
	s := &Stack{o: o, Procs: NewProcs(), Rec: NewRecorder(nil), log: o.Log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	s.Lab, err = lab.Start(ctx, lab.Options{Dir: filepath.Join(o.Dir, "lab"), Regions: o.Regions,
		AgentsPerRegion: o.AgentsPerRegion, Log: o.Log, Host: o.EdgeHost,
		PipelinesQueue: o.Interval / 20, PipelinesRun: o.Interval / 10})
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	recAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	rl, err := net.Listen("tcp", recAddr)
	if err != nil {
		return nil, err
	}
	s.recSrv = &http.Server{Handler: s.Rec, ReadHeaderTimeout: 5 * time.Second}
	go s.recSrv.Serve(rl)

	keys, err := fleet.NewKey()
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(o.Dir, "gossip.keys")
	s.keyFile = keyFile
	if err := os.WriteFile(keyFile, fleet.FormatKeys([][]byte{keys}), 0o600); err != nil {
		return nil, err
	}

	if o.Alertmanager != "" {
		if err := s.startAlertmanager(); err != nil {
			return nil, err
		}
	}

	addrs, err := freeAddrs(o.AggregatorHost, 4)
	if err != nil {
		return nil, err
	}
	aggHTTP, aggGRPC, aggOTLPHTTP, aggGossip := addrs[0], addrs[1], addrs[2], addrs[3]
	s.AggregatorURL, s.AggregatorGRPC, s.AggregatorGossip = "http://"+aggHTTP, aggGRPC, aggGossip
	// Each agent's gossip and HTTP addresses, in edge order.
	var proberGossip, proberListen []string
	next := map[string]int{}
	for _, e := range s.Lab.Edges {
		pl, ok := o.Placement[e.Region]
		if !ok || pl.FirstPort == 0 {
			host := "127.0.0.1"
			if ok && pl.Host != "" {
				host = pl.Host
			}
			two, err := freeAddrs(host, 2)
			if err != nil {
				return nil, err
			}
			proberGossip, proberListen = append(proberGossip, two[0]), append(proberListen, two[1])
			continue
		}
		port := pl.FirstPort + 2*next[e.Region]
		next[e.Region]++
		proberGossip = append(proberGossip, net.JoinHostPort(pl.Host, fmt.Sprint(port)))
		proberListen = append(proberListen, net.JoinHostPort(pl.Host, fmt.Sprint(port+1)))
	}
	join := func(self string) string {
		var peers []string
		for _, a := range append([]string{aggGossip}, proberGossip...) {
			if a != self {
				peers = append(peers, fmt.Sprintf("%q", a))
			}
		}
		return "[" + strings.Join(peers, ", ") + "]"
	}
	gossip := func(name, bind string) string {
		return fmt.Sprintf(`
[gossip]
fleet = "vantage-demo"
name = %q
bind = %q
join = %s
key_file = %q
timings = "lan"
probe_interval = "500ms"
probe_timeout = "250ms"
suspicion_mult = 2
confirm_rate_limit = %q
`, name, bind, join(bind), keyFile, (o.Interval / 2).String())
	}

	// The aggregator.
	sinks := fmt.Sprintf("\n[[alerts.sink]]\ntype = \"webhook\"\nurl = \"http://%s/\"\ntimeout = \"2s\"\n", recAddr)
	if s.AlertmanagerURL != "" {
		sinks += fmt.Sprintf("\n[[alerts.sink]]\ntype = \"alertmanager\"\nurl = %q\ntimeout = \"2s\"\n", s.AlertmanagerURL)
	}
	aggDir := filepath.Join(o.Dir, "aggregator")
	s.AggregatorDir = aggDir
	s.aggConf = filepath.Join(o.Dir, "aggregator.toml")
	agg := fmt.Sprintf(`# Generated by the campaign runner.
[aggregator]
name = "aggregator"
data_dir = %q
listen = %q

[ingest]
grpc = %q
http = %q
dedup_window = "1h"

[verdict]
max_slot_skew = "30s"

[alerts]
resend_interval = "10s"
runbook_base = "https://runbooks.example.com/"
status_url = %q
%s%s`, aggDir, aggHTTP, aggGRPC, aggOTLPHTTP, s.AggregatorURL+"/", sinks, gossip("aggregator", aggGossip))
	if err := os.WriteFile(s.aggConf, []byte(agg), 0o600); err != nil {
		return nil, err
	}

	// The probers: one per edge, each reaching the product only through it.
	timeout := o.Interval * 8 / 10
	env := s.env()
	for i, e := range s.Lab.Edges {
		a := Agent{Name: e.Name, Region: e.Region, Listen: proberListen[i], Gossip: proberGossip[i],
			Config:      filepath.Join(o.Dir, "prober-"+e.Name+".toml"),
			ResultsFile: s.ResultsFile(e.Name),
			wrap:        o.Placement[e.Region].Wrap}
		conf := fmt.Sprintf(`# Generated by the campaign runner.
[agent]
name = %q
region = %q
data_dir = %q
listen = %q
max_concurrent = 8
stop_grace = "5s"

[defaults]
runbook = "https://runbooks.example.com/vantage-lab"

[[export]]
type = "otlp"
name = "aggregator"
endpoint = %q
protocol = "grpc"
[export.tls]
insecure = true

[[export]]
type = "jsonl"
name = "results"
path = %q
%s
%s`, e.Name, e.Region, filepath.Join(o.Dir, "probers", e.Name), a.Listen, aggGRPC, a.ResultsFile,
			gossip(e.Name, proberGossip[i]),
			s.Lab.ProberJourneys(e, lab.JourneyOptions{Schedule: "@every " + o.Interval.String(), Timeout: timeout}))
		if err := os.WriteFile(a.Config, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		s.Agents = append(s.Agents, a)
	}
	_ = env
	if err := s.StartAggregator(); err != nil {
		return nil, err
	}
	for _, a := range s.Agents {
		if err := s.StartProber(a.Name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ResultsFile is the JSONL file where prober name logs every Result it
// exports (beside OTLP to the aggregator), for counting lost results.
func (s *Stack) ResultsFile(name string) string {
	return filepath.Join(s.o.Dir, "results-"+name+".jsonl")
}

// AggregatorDataDir is the aggregator's data_dir (its dedup window).
func (s *Stack) AggregatorDataDir() string { return filepath.Join(s.o.Dir, "aggregator") }

// Interval is every journey's schedule interval.
func (s *Stack) Interval() time.Duration { return s.o.Interval }

// Regions are the fleet's regions.
func (s *Stack) Regions() []string { return append([]string(nil), s.o.Regions...) }

// env is the environment the probers need: the lab's throwaway secrets.
func (s *Stack) env() []string {
	var out []string
	for k, v := range s.Lab.State().Env {
		out = append(out, k+"="+v)
	}
	return out
}

func (s *Stack) startAlertmanager() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	dir := filepath.Join(s.o.Dir, "alertmanager")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	args := []string{"--config.file=" + s.o.AlertmanagerConfig, "--storage.path=" + dir,
		"--web.listen-address=" + addr, "--cluster.listen-address="}
	if err := s.Procs.Start("alertmanager", s.o.Alertmanager, args, nil, filepath.Join(s.o.Dir, "alertmanager.log")); err != nil {
		return err
	}
	s.AlertmanagerURL = "http://" + addr
	return waitHTTP(context.Background(), s.AlertmanagerURL+"/-/ready", 20*time.Second)
}

// StartAggregator starts (or restarts) the aggregator process.
func (s *Stack) StartAggregator() error {
	if err := s.Procs.Start("aggregator", filepath.Join(s.o.BinDir, "aggregator"),
		[]string{"serve", "-config", s.aggConf}, nil, filepath.Join(s.o.Dir, "aggregator.log")); err != nil {
		return err
	}
	return waitHTTP(context.Background(), s.AggregatorURL+"/api/v1/status", 30*time.Second)
}

// StopAggregator stops the aggregator gracefully.
func (s *Stack) StopAggregator() error {
	return s.Procs.Signal("aggregator", syscall.SIGTERM, 15*time.Second)
}

// KillAggregator kills the aggregator with SIGKILL: no flush, no goodbye.
func (s *Stack) KillAggregator() error {
	return s.Procs.Signal("aggregator", syscall.SIGKILL, 5*time.Second)
}

// StopProber stops the prober named name with SIGTERM: it finishes or
// abandons its runs within stop_grace and leaves the fleet gracefully.
func (s *Stack) StopProber(name string) error {
	return s.Procs.Signal(name, syscall.SIGTERM, 15*time.Second)
}

// KeyFile is the gossip key file every node of the stack reads.
func (s *Stack) KeyFile() string { return s.keyFile }

// Hangup sends SIGHUP to the aggregator and every running prober (the
// reload step of a gossip key rotation).
func (s *Stack) Hangup() error {
	var errs []error
	for _, n := range append([]string{"aggregator"}, s.agentNames()...) {
		if s.Procs.Running(n) {
			errs = append(errs, s.Procs.Signal(n, syscall.SIGHUP, 0))
		}
	}
	return errors.Join(errs...)
}

func (s *Stack) agentNames() []string {
	var out []string
	for _, a := range s.Agents {
		out = append(out, a.Name)
	}
	return out
}

// StartProber starts (or restarts) the prober named name.
func (s *Stack) StartProber(name string) error {
	for _, a := range s.Agents {
		if a.Name == name {
			bin, args := filepath.Join(s.o.BinDir, "prober"), []string{"run", "-config", a.Config}
			if len(a.wrap) > 0 {
				bin, args = a.wrap[0], append(append(append([]string(nil), a.wrap[1:]...), bin), args...)
			}
			return s.Procs.Start(name, bin, args, s.env(), filepath.Join(s.o.Dir, "prober-"+name+".log"))
		}
	}
	return fmt.Errorf("no prober %q", name)
}

// KillProber kills the prober named name with SIGKILL: it leaves no
// goodbye in gossip, as a crashed host would not.
func (s *Stack) KillProber(name string) error {
	return s.Procs.Signal(name, syscall.SIGKILL, 5*time.Second)
}

// Status reads the aggregator's verdict snapshot.
func (s *Stack) Status(ctx context.Context) (verdict.Snapshot, error) {
	var body struct {
		Status verdict.Snapshot `json:"status"`
	}
	err := getJSON(ctx, s.AggregatorURL+"/api/v1/status", &body)
	return body.Status, err
}

// WaitGreen waits until every journey has data from every region and is
// ok there, or ctx ends.
func (s *Stack) WaitGreen(ctx context.Context) error {
	for {
		st, err := s.Status(ctx)
		if err == nil && green(st, s.o.Regions) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the fleet did not turn green: %w (last status error: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func green(st verdict.Snapshot, regions []string) bool {
	if len(st.Journeys) == 0 || len(st.Open) > 0 {
		return false
	}
	for _, j := range st.Journeys {
		for _, r := range regions {
			if c, ok := j.Cells[r]; !ok || c.State != verdict.StateOK {
				return false
			}
		}
	}
	return true
}

// Close stops every process, the recorder and the lab.
func (s *Stack) Close() {
	if s.Procs != nil {
		s.Procs.Close()
	}
	if s.recSrv != nil {
		_ = s.recSrv.Close()
	}
	if s.Lab != nil {
		_ = s.Lab.Close()
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v)
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := httpClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s", url, limit)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// BuildBinaries builds prober and aggregator into dir with the go tool.
func BuildBinaries(ctx context.Context, repoRoot, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "./cmd/prober", "./cmd/aggregator")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}
