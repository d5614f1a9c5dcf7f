// Package kinds builds the one registry from journey kind to constructor.
// It is the only package that imports every kind.
package kinds

import (
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/hg"
)

// Registry returns the constructors of every journey kind.
func Registry() probes.Registry {
	return probes.Registry{
		hg.Kind: hg.New,
	}
}
