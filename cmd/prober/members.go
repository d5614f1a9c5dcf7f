package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/fleet"
)

// cmdMembers joins the fleet briefly as an observer (a node that never
// owns a journey), waits for membership to arrive, prints the fleet as it
// sees it and leaves.
func cmdMembers(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("members", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	wait := fs.Duration("wait", 3*time.Second, "how long to listen to gossip before printing")
	verbose := fs.Bool("v", false, "log gossip to stderr")
	if err := fs.Parse(args); err != nil || *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: prober members -config FILE [-wait 3s] [-v]")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	lg := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	fc, err := fleetConfig(cfg, fleet.RoleObserver, lg)
	if err != nil {
		fmt.Fprintln(stderr, "prober members:", err)
		return 1
	}
	// A short-lived node with its own name and port, so that it can run
	// beside the agent on the same host without taking its place.
	suffix := make([]byte, 4)
	rand.Read(suffix)
	fc.Name = cfg.Gossip.Name + ".members." + hex.EncodeToString(suffix)
	fc.Bind = withPort(fc.Bind, "0")
	if fc.Advertise != "" {
		fc.Advertise = withPort(fc.Advertise, "0")
	}
	if len(fc.Join) == 0 {
		fmt.Fprintln(stderr, "prober members: gossip.join is empty; nothing to ask")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *wait+time.Minute)
	defer cancel()
	fl, err := fleet.New(ctx, fc)
	if err != nil {
		fmt.Fprintln(stderr, "prober members:", err)
		return 1
	}
	time.Sleep(*wait)
	snap := fl.Snapshot()
	fl.Close(cfg.Gossip.LeaveTimeout.D)
	if len(snap.Members) <= 1 {
		fmt.Fprintf(stderr, "prober members: no peer answered within %s (join %v)\n", *wait, fc.Join)
		return 1
	}
	printMembers(stdout, cfg.Gossip.Fleet, snap, fc.Journeys, fc.Meta.ConfigDigest)
	return 0
}

func withPort(hostport, port string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return net.JoinHostPort(host, port)
}

// printMembers renders a snapshot: nodes by region with role, state,
// version and config digest (a value that differs from the one most
// probers have is marked "*"; a digest that differs from this config's is
// marked "≠ local"), then who runs each journey in each region.
func printMembers(w io.Writer, fleetName string, s fleet.Snapshot, journeys map[string]fleet.Journey, localDigest string) {
	var nodes []fleet.Member
	for _, m := range s.Members {
		if m.Name != s.Self.Name { // the observer itself is not part of the picture
			nodes = append(nodes, m)
		}
	}
	commonVersion, commonDigest := majority(nodes, func(m fleet.Member) string { return m.Version }), majority(nodes, func(m fleet.Member) string { return m.ConfigDigest })
	fmt.Fprintf(w, "fleet %s: %d live nodes, %d regions (seen by %s)\n\n", fleetName, len(nodes), len(s.Regions), s.Self.Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tNODE\tROLE\tSTATE\tADDRESS\tVERSION\tCONFIG")
	for _, m := range nodes {
		v, d := m.Version, m.ConfigDigest
		if v != commonVersion {
			v += " *"
		}
		if d != commonDigest {
			d += " *"
		}
		if m.Role == fleet.RoleProber && m.ConfigDigest != localDigest {
			d += " ≠ local"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\talive\t%s\t%s\t%s\n", orDash(m.Region), m.Name, m.Role, m.Addr, orDash(v), orDash(d))
	}
	var gone []string
	for n := range s.Gone {
		if !strings.Contains(n, ".members.") {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	for _, n := range gone {
		fmt.Fprintf(tw, "-\t%s\t-\tgone\t-\t-\tsince %s\n", n, s.Gone[n].UTC().Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n* differs from most nodes (version %s, config %s); this config is %s\n\n", orDash(commonVersion), orDash(commonDigest), localDigest)

	regions := fleet.Regions(s.Members)
	names := make([]string, 0, len(journeys))
	for n := range journeys {
		names = append(names, n)
	}
	sort.Strings(names)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "JOURNEY\tKIND\tMODE\t%s\n", strings.Join(regions, "\t"))
	for _, n := range names {
		j := journeys[n]
		cells := make([]string, len(regions))
		for i, r := range regions {
			switch {
			case j.Mode == fleet.ModeEveryAgent:
				cells[i] = fmt.Sprintf("all %d", len(s.Regions[r]))
			default:
				if o, ok := s.Owner(n, r); ok {
					cells[i] = o
				} else {
					cells[i] = "-"
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, j.Kind, j.Mode, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// majority returns the value most probers have (ties: the smallest).
func majority(ms []fleet.Member, f func(fleet.Member) string) string {
	count := map[string]int{}
	for _, m := range ms {
		if m.Role == fleet.RoleProber {
			count[f(m)]++
		}
	}
	best, n := "", 0
	for v, c := range count {
		if c > n || (c == n && v < best) {
			best, n = v, c
		}
	}
	return best
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
