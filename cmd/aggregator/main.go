// Command aggregator is the Vantage aggregator: it receives Results over
// OTLP, counts every run once, decides verdicts and alerts, and serves the
// status page, the JSON API and /metrics.
//
//	aggregator validate -config FILE
//	aggregator serve -config FILE
//	aggregator version
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/alert"
	"github.com/vantage-fleet/vantage/pkg/fleet"
	"github.com/vantage-fleet/vantage/pkg/ingest"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/status"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
	"github.com/vantage-fleet/vantage/pkg/verdict"
	"github.com/vantage-fleet/vantage/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: aggregator <command> [flags]

commands:
  validate -config FILE   check a config file
  serve -config FILE      receive OTLP until SIGTERM
  version                 print the version
`

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "serve":
		return cmdServe(ctx, args[1:], stderr)
	case "version":
		fmt.Fprintln(stdout, "aggregator", version.String())
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "aggregator: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil || *path == "" {
		fmt.Fprintf(stderr, "aggregator %s: -config FILE is required\n", name)
		return "", false
	}
	return *path, true
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return 2
	}
	if _, err := config.LoadAggregator(path); err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) int {
	path, ok := configFlag("serve", args, stderr)
	if !ok {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	cfg, err := config.LoadAggregator(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error("aggregator stopped", "err", err)
		return 1
	}
	return 0
}

// listeners are the three addresses serve binds; tests pass pre-bound
// listeners to learn the ports.
type listeners struct{ grpc, http, api net.Listener }

// serve runs the aggregator until ctx ends.
func serve(ctx context.Context, cfg *config.AggregatorConfig, log *slog.Logger, ls *listeners) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := telemetry.NewRegistry()
	in := cfg.Ingest
	dedup, err := ingest.OpenDedup(cfg.Aggregator.DataDir, in.DedupWindow.D, in.DedupMaxIDs, nil)
	if err != nil {
		return err
	}
	defer dedup.Close()
	store := ingest.NewStore(100_000)
	engine, err := alert.Open(ctx, alert.Options{DataDir: cfg.Aggregator.DataDir, Verdict: verdict.FromConfig(cfg.Verdict),
		Alerts: cfg.Alerts, Redactor: report.NewRedactor(cfg.SecretValues()...), Logger: log})
	if err != nil {
		return err
	}
	defer engine.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	var forwards []*ingest.Forwarder
	for i := range in.Forward {
		f, err := ingest.NewForwarder(&in.Forward[i], reg, log)
		if err != nil {
			return err
		}
		forwards = append(forwards, f)
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(ctx) }()
	}
	tlsCfg, err := ingest.ServerTLS(in.TLS)
	if err != nil {
		return err
	}
	recv, err := ingest.New(ingest.Options{MaxRequestBytes: in.MaxRequestBytes, BearerToken: in.BearerToken.Value(),
		Dedup: dedup, Sink: sinks{engine, store}, Forward: forwards, Telemetry: reg, Log: log, TLS: tlsCfg})
	if err != nil {
		return err
	}
	mp, err := derivedMetrics(cfg, reg, engine)
	if err != nil {
		return err
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = mp.Shutdown(sctx)
	}()

	if ls == nil {
		ls = &listeners{}
	}
	for _, l := range []struct {
		ln   *net.Listener
		addr string
	}{{&ls.grpc, in.GRPC}, {&ls.http, in.HTTP}, {&ls.api, cfg.Aggregator.Listen}} {
		if *l.ln == nil {
			if *l.ln, err = net.Listen("tcp", l.addr); err != nil {
				return fmt.Errorf("listen %s: %w", l.addr, err)
			}
		}
	}
	token := cfg.Aggregator.APIToken.Value()
	page := status.NewHandler(engine, status.Options{Token: token})
	api := http.NewServeMux()
	api.Handle("/", page)
	api.Handle("GET /metrics", requireToken(token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page.ServeHTTP(w, r) // the verdict metrics, then the ingest counters
		_ = reg.WriteText(w)
	})))
	api.Handle("GET /api/v1/results", requireToken(token, store.Handler()))
	api.Handle("GET /api/v1/results/ids", requireToken(token, store.IDsHandler()))
	api.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	apiSrv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}

	log.Info("aggregator serving", "grpc", ls.grpc.Addr().String(), "http", ls.http.Addr().String(),
		"api", ls.api.Addr().String(), "data_dir", cfg.Aggregator.DataDir, "dedup_ids", dedup.Len())
	errc := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errc <- recv.ServeGRPC(ctx, ls.grpc) }()
	go func() { defer wg.Done(); errc <- recv.ServeHTTP(ctx, ls.http) }()
	go func() {
		defer wg.Done()
		e := apiSrv.Serve(ls.api)
		if errors.Is(e, http.ErrServerClosed) {
			e = nil
		}
		errc <- e
	}()
	// SIGHUP is the key-rotation signal (README "Fleet and gossip"): catch
	// it before joining, so that a rotation step never kills the
	// aggregator (the default action of SIGHUP is to terminate).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fl, err := joinFleet(cfg, log)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		reloadKeysOnHUP(ctx, hup, fl, log)
	}()
	defer func() {
		if fl != nil {
			_ = fl.Close(cfg.Gossip.LeaveTimeout.D)
		}
	}()
	wg.Add(1)
	go func() { // time-driven verdict rules, alert re-sends, persistence
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if fl != nil {
					engine.SetMembership(membership(fl))
				}
				engine.Tick(now)
			}
		}
	}()
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	cancel()
	sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
	_ = apiSrv.Shutdown(sctx)
	c()
	wg.Wait()
	return first
}

// sinks hands each new Result to the alert engine (verdicts, alerts) and
// to the store behind GET /api/v1/results.
type sinks struct {
	engine *alert.Engine
	store  *ingest.Store
}

func (s sinks) Accept(r report.Result) error {
	_ = s.store.Accept(r)
	return s.engine.Accept(r)
}

func (s sinks) AcceptBatch(rs []report.Result) []error {
	for _, r := range rs {
		_ = s.store.Accept(r)
	}
	return s.engine.AcceptBatch(rs)
}

// requireToken guards h with a bearer token when one is configured.
func requireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// derivedMetrics publishes the aggregator's counters over OTLP to every
// forward endpoint (best-effort, every 30 s).
func derivedMetrics(cfg *config.AggregatorConfig, reg *telemetry.Registry, engine *alert.Engine) (*sdkmetric.MeterProvider, error) {
	opts := []sdkmetric.Option{sdkmetric.WithResource(resource.NewSchemaless(
		semconv.ServiceName("vantage-aggregator"), semconv.ServiceInstanceID(cfg.Aggregator.Name)))}
	ctx := context.Background()
	for _, f := range cfg.Ingest.Forward {
		var exp sdkmetric.Exporter
		var err error
		if f.Protocol == "http" {
			o := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(f.Endpoint), otlpmetrichttp.WithHeaders(f.Headers), otlpmetrichttp.WithTimeout(f.Timeout.D)}
			if f.Insecure {
				o = append(o, otlpmetrichttp.WithInsecure())
			}
			exp, err = otlpmetrichttp.New(ctx, o...)
		} else {
			o := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(f.Endpoint), otlpmetricgrpc.WithHeaders(f.Headers), otlpmetricgrpc.WithTimeout(f.Timeout.D)}
			if f.Insecure {
				o = append(o, otlpmetricgrpc.WithInsecure())
			}
			exp, err = otlpmetricgrpc.New(ctx, o...)
		}
		if err != nil {
			return nil, fmt.Errorf("forward %s: %w", f.Name, err)
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(30*time.Second))))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	meter := mp.Meter("github.com/vantage-fleet/vantage/cmd/aggregator")
	if err := reg.RegisterOTLP(meter); err != nil {
		return nil, err
	}
	if err := registerVerdictMetrics(meter, engine); err != nil {
		return nil, err
	}
	return mp, nil
}

// joinFleet joins the gossip fleet as role aggregator (it runs no journeys
// and never owns one) so that the verdicts can tell a region with no live
// prober (blind) from one whose results do not arrive. Without [gossip] it
// returns nil and the membership stays unknown.
func joinFleet(cfg *config.AggregatorConfig, log *slog.Logger) (*fleet.Fleet, error) {
	g := cfg.Gossip
	if g == nil {
		return nil, nil
	}
	keys, err := fleet.ReadKeyFile(g.KeyFile)
	if err != nil {
		return nil, err
	}
	t, err := fleet.TimingsFrom(g.Timings, g.ProbeInterval.D, g.ProbeTimeout.D, g.GossipInterval.D, g.SuspicionMult)
	if err != nil {
		return nil, fmt.Errorf("gossip timings: %w", err)
	}
	return fleet.New(context.Background(), fleet.Config{
		Name: g.Name, Fleet: g.Fleet, Bind: g.Bind, Advertise: g.Advertise, Join: g.Join,
		Keys: keys, KeyFile: g.KeyFile, Timings: t, JoinBackoff: g.JoinBackoff.D,
		Meta:   fleet.Meta{Role: fleet.RoleAggregator, Version: version.String()},
		Logger: log,
	})
}

// reloadKeysOnHUP re-reads the gossip key file on every signal from hup
// until ctx ends: the aggregator's side of a key rotation. A bad file is
// logged and changes nothing; without gossip the signal is ignored.
func reloadKeysOnHUP(ctx context.Context, hup <-chan os.Signal, fl *fleet.Fleet, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if fl == nil {
				log.Info("SIGHUP ignored: no gossip configured")
				continue
			}
			if err := fl.ReloadKeys(); err != nil {
				log.Error("gossip key reload failed; keeping the current keys", "err", err)
				continue
			}
			log.Info("gossip keys reloaded")
		}
	}
}

// membership turns the fleet's view into the verdict engine's: the live
// probers of each region. It is known once this node has joined.
func membership(fl *fleet.Fleet) verdict.Membership {
	snap := fl.Snapshot()
	m := verdict.Membership{Probers: map[string][]string{}, Known: fl.Joined()}
	for region, members := range snap.Regions {
		for _, mb := range members {
			if mb.Role == fleet.RoleProber {
				m.Probers[region] = append(m.Probers[region], mb.Name)
			}
		}
	}
	return m
}
