// Package kinds builds the one registry from journey kind to constructor.
// It is the only package that imports every kind.
package kinds

import (
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/git"
	"github.com/vantage-fleet/vantage/probes/hg"
	probehttp "github.com/vantage-fleet/vantage/probes/http"
	"github.com/vantage-fleet/vantage/probes/pipelines"
)

// Registry returns the constructors of every journey kind.
func Registry() probes.Registry {
	return probes.Registry{
		probehttp.Kind: probehttp.New,
		git.Kind:       git.New,
		hg.Kind:        hg.New,
		pipelines.Kind: pipelines.New,
	}
}
