package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/export"
	"github.com/vantage-fleet/vantage/pkg/fleet"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/schedule"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/kinds"
)

// cmdRun runs the schedule until SIGTERM or SIGINT, reloading on SIGHUP.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil || *path == "" {
		fmt.Fprintln(stderr, "prober run: -config FILE is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return runAgent(ctx, *path, reload, stdout, newLogger(stderr))
}

// agent is a running prober: its current journeys, the loop that
// schedules them, the exporters and the health endpoints.
type agent struct {
	path   string
	log    *slog.Logger
	stdout io.Writer
	reg    probes.Registry

	mu      sync.Mutex
	current *built
	exps    []export.Exporter
	loop    *schedule.Loop
	// fleet is nil when the agent runs alone (no [gossip]); its methods
	// are nil-safe: alone, the agent owns every journey with no offset.
	fleet *fleet.Fleet
	ready atomic.Bool
	// handover, once set (at shutdown), is what ShouldRun answers instead
	// of the fleet: the journeys this agent ran when it left.
	handover atomic.Pointer[map[string]bool]
}

// runsSlot is the loop's ShouldRun: the fleet's ownership, or during the
// handover after leaving, the ownership the agent had when it left.
func (a *agent) runsSlot(journey string, slot time.Time) bool {
	if h := a.handover.Load(); h != nil {
		return (*h)[journey]
	}
	return a.fleet.RunsSlot(journey, slot)
}

// owned returns the journeys this agent runs now.
func (a *agent) owned() map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]bool{}
	for _, j := range a.current.cfg.Journey {
		out[j.Name] = a.fleet.RunsSlot(j.Name, time.Time{})
	}
	return out
}

// runAgent runs until ctx ends; each receive on reload reloads the config.
// It returns the process exit code.
func runAgent(ctx context.Context, path string, reload <-chan struct{}, stdout io.Writer, log *slog.Logger) int {
	a := &agent{path: path, log: log, stdout: stdout, reg: kinds.Registry()}
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("invalid config", "path", path, "problems", err.Error())
		return 2
	}
	b, err := buildJourneys(cfg, a.reg, log)
	if err != nil {
		log.Error("cannot build journeys", "path", path, "error", err.Error())
		return 2
	}
	a.exps, err = buildExporters(cfg, stdout)
	if err != nil {
		b.close(log)
		log.Error("cannot build exporters", "path", path, "error", err.Error())
		return 2
	}
	a.current = b

	var srv *http.Server
	if cfg.Agent.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Agent.Listen)
		if err != nil {
			b.close(log)
			closeExporters(context.Background(), a.exps)
			log.Error("cannot listen", "addr", cfg.Agent.Listen, "error", err.Error())
			return 2
		}
		srv = &http.Server{Handler: newMux(a), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("health endpoint stopped", "error", err.Error())
			}
		}()
		log.Info("serving health endpoints", "addr", ln.Addr().String())
	}

	// Peers may leave slots to this agent from the moment it joins.
	joining := time.Now()
	if cfg.Gossip != nil {
		fc, err := fleetConfig(cfg, fleet.RoleProber, log)
		if err == nil {
			a.fleet, err = fleet.New(context.WithoutCancel(ctx), fc)
		}
		if err != nil {
			b.close(log)
			closeExporters(context.Background(), a.exps)
			log.Error("cannot join the fleet", "error", err.Error())
			return 2
		}
	}
	a.loop = &schedule.Loop{
		MaxConcurrent: cfg.Agent.MaxConcurrent,
		StopGrace:     cfg.Agent.StopGrace.D,
		Log:           log,
		ShouldRun:     a.runsSlot,
		Offset:        a.fleet.JourneyOffset,
	}
	// Confirmation runs asked for by other agents run at once, with the
	// slot they confirm.
	a.fleet.SetOnConfirm(func(journey string, slot time.Time) {
		if !a.loop.RunNow(journey, slot, report.TriggerConfirm) {
			log.Info("confirmation refused: journey busy or concurrency limit reached", "journey", journey)
		}
	})
	jobs, err := a.jobs(b)
	if err != nil {
		log.Error("invalid schedule", "error", err.Error())
		return 2
	}
	// The first slots are planned with this region's phase offset, which
	// needs the fleet's regions: planned alone (offset 0), a restarted
	// agent skips the slot its region is about to run while its peers,
	// seeing it back, leave that slot to it (found by the chaos roll).
	if !waitJoined(ctx, a.fleet.Joined, joinWait) {
		log.Warn("starting before joining the fleet: the first slots may be planned without the region's phase offset", "waited", joinWait.String())
	}
	if a.fleet != nil {
		a.loop.From = joining
	}
	// Runs are not cancelled by the signal: Stop lets them finish within
	// the grace period.
	a.loop.Start(context.WithoutCancel(ctx), jobs)
	a.ready.Store(true)
	log.Info("prober running", "agent", cfg.Agent.Name, "region", cfg.Agent.Region, "journeys", len(jobs), "config", path)

	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-reload:
			a.reload()
		}
	}
	a.ready.Store(false)
	if a.fleet != nil {
		// Leave the fleet first, so that our journeys move to other agents
		// at once and no slot is missed during a rolling restart. The leave
		// reaches the peers by gossip, within a few rounds; until then they
		// leave our slots to us, so we keep running the journeys we owned
		// for a short handover (a slot missed otherwise: the chaos roll).
		owned := a.owned()
		a.handover.Store(&owned)
		if err := a.fleet.Close(cfg.Gossip.LeaveTimeout.D); err != nil {
			log.Warn("leaving the fleet", "error", err.Error())
		}
		log.Info("handing over: running our journeys until the peers know we left", "for", handoverWait.String())
		time.Sleep(handoverWait)
	}
	log.Info("stopping: waiting for runs in flight", "grace", cfg.Agent.StopGrace.D.String())
	graceful := a.loop.Stop()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	a.mu.Lock()
	a.current.close(log)
	a.mu.Unlock()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := closeExporters(cctx, a.exps); err != nil {
		log.Warn("closing exporters", "error", err.Error())
	}
	st := a.loop.Stats()
	log.Info("prober stopped", "graceful", graceful, "runs", st.Runs, "skipped", st.Skipped)
	return 0
}

// handoverWait is how long a leaving agent keeps running the journeys it
// owned: long enough for its leave to reach every peer by gossip (a few
// gossip rounds of 200 ms on LAN timings, 500 ms on WAN ones).
const handoverWait = 2 * time.Second

// joinWait bounds how long an agent waits to join its fleet before its
// first slot; an agent whose peers are all down starts alone after it.
const joinWait = 5 * time.Second

// waitJoined waits until joined reports true, up to bound or until ctx
// ends, and reports whether it did.
func waitJoined(ctx context.Context, joined func() bool, bound time.Duration) bool {
	t := time.NewTimer(bound)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !joined() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return joined()
		case <-tick.C:
		}
	}
	return true
}

// jobs turns the built journeys into the loop's jobs.
func (a *agent) jobs(b *built) ([]schedule.Job, error) {
	var jobs []schedule.Job
	for i := range b.cfg.Journey {
		jc := &b.cfg.Journey[i]
		j, ok := b.journeys[jc.Name]
		if !ok {
			continue // disabled
		}
		s, err := schedule.Parse(jc.Schedule)
		if err != nil {
			return nil, fmt.Errorf("journey %s: %w", jc.Name, err)
		}
		runner := b.runner
		jobs = append(jobs, schedule.Job{Name: jc.Name, Schedule: s, Run: func(ctx context.Context, slot time.Time, trig report.Trigger) {
			res := runner.Execute(ctx, j, probes.Spec{Journey: jc, Slot: slot, Trigger: trig})
			a.emit(ctx, res)
			if res.Trigger == report.TriggerSchedule && res.Status == report.StatusFail {
				// Ask the region's other agent and the other regions to
				// look at once: agent-local, regional or global in seconds.
				a.fleet.RequestConfirm(res.Journey, res.Kind, res.Slot)
			}
		}})
	}
	return jobs, nil
}

// emit hands a Result to every exporter.
func (a *agent) emit(ctx context.Context, res report.Result) {
	a.mu.Lock()
	exps := a.exps
	a.mu.Unlock()
	for _, x := range exps {
		if err := x.Put(ctx, res); err != nil {
			a.log.Error("export failed", "journey", res.Journey, "id", res.ID, "error", err.Error())
		}
	}
}

// reload loads the config again. An invalid config is rejected with a log
// line and the running one stays. Journeys are replaced; settings of the
// agent itself (listen address, concurrency, exports) need a restart.
func (a *agent) reload() {
	cfg, err := config.Load(a.path)
	if err != nil {
		a.log.Error("reload rejected: invalid config; keeping the running one", "path", a.path, "problems", err.Error())
		return
	}
	b, err := buildJourneys(cfg, a.reg, a.log)
	if err != nil {
		a.log.Error("reload rejected: keeping the running config", "path", a.path, "error", err.Error())
		return
	}
	jobs, err := a.jobs(b)
	if err != nil {
		b.close(a.log)
		a.log.Error("reload rejected: keeping the running config", "path", a.path, "error", err.Error())
		return
	}
	a.mu.Lock()
	old := a.current
	a.current = b
	a.mu.Unlock()
	if !reflect.DeepEqual(old.cfg.Export, cfg.Export) || old.cfg.Agent != cfg.Agent {
		a.log.Warn("reload: changes to [agent] and [[export]] take effect after a restart")
	}
	if a.fleet != nil {
		reloadGossipKeys(a.fleet, a.log)
		a.fleet.SetJourneys(fleetJourneys(cfg))
	}
	a.loop.Replace(jobs)
	// Runs of the old generation still in flight keep their journey
	// objects; kinds that hold resources must tolerate Close during a run.
	old.close(a.log)
	a.log.Info("config reloaded", "path", a.path, "journeys", len(jobs))
}
