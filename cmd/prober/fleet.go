package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/fleet"
	"github.com/vantage-fleet/vantage/pkg/version"
)

// fleetConfig maps a prober config's [gossip] section to a fleet.Config for
// a node of the given role (fleet.RoleProber for `run`, fleet.RoleObserver
// for `members`). The caller sets OnConfirm (or calls SetOnConfirm).
func fleetConfig(cfg *config.Config, role string, lg *slog.Logger) (fleet.Config, error) {
	g := cfg.Gossip
	if g == nil {
		return fleet.Config{}, errors.New("the config has no [gossip] section")
	}
	keys, err := fleet.ReadKeyFile(g.KeyFile)
	if err != nil {
		return fleet.Config{}, err
	}
	t, err := fleet.TimingsFrom(g.Timings, g.ProbeInterval.D, g.ProbeTimeout.D, g.GossipInterval.D, g.SuspicionMult)
	if err != nil {
		return fleet.Config{}, fmt.Errorf("gossip timings: %w", err)
	}
	journeys := fleetJourneys(cfg)
	digest, err := configDigest(cfg)
	if err != nil {
		return fleet.Config{}, err
	}
	return fleet.Config{
		Name:            g.Name,
		Fleet:           g.Fleet,
		Bind:            g.Bind,
		Advertise:       g.Advertise,
		Join:            g.Join,
		Keys:            keys,
		KeyFile:         g.KeyFile,
		Meta:            fleet.Meta{Role: role, Region: cfg.Agent.Region, Version: version.String(), ConfigDigest: digest},
		Journeys:        journeys,
		Timings:         t,
		ConfirmInterval: g.ConfirmRateLimit.D,
		JoinBackoff:     g.JoinBackoff.D,
		Logger:          lg,
	}, nil
}

// fleetJourneys lists the enabled journeys of cfg for the fleet (also for
// Fleet.SetJourneys after a config reload).
func fleetJourneys(cfg *config.Config) map[string]fleet.Journey {
	journeys := map[string]fleet.Journey{}
	for _, j := range cfg.Journey {
		if !j.Disabled {
			journeys[j.Name] = fleet.Journey{Kind: j.Kind, Mode: j.Mode, Interval: j.Interval.D}
		}
	}
	return journeys
}

// configDigest identifies the journey definitions (journeys and defaults,
// secrets as their references only): agents of one fleet should agree on
// it, whatever their own name, region or gossip settings. 16 hex digits of
// SHA-256 over their JSON form.
func configDigest(cfg *config.Config) (string, error) {
	b, err := json.Marshal(struct {
		Defaults config.JourneyDefaults
		Journeys []config.Journey
	}{cfg.Defaults, cfg.Journey})
	if err != nil {
		return "", fmt.Errorf("config digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// reloadGossipKeys re-reads the gossip key file into the live keyring: the
// agent's side of a key rotation, done on every SIGHUP (config reload). A
// bad file is logged and changes nothing.
func reloadGossipKeys(fl *fleet.Fleet, lg *slog.Logger) {
	if err := fl.ReloadKeys(); err != nil {
		lg.Error("gossip key reload failed; keeping the current keys", "err", err)
	}
}
