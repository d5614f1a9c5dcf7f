package config

// Gossip configures the agent's membership in the fleet (hashicorp/memberlist).
type Gossip struct {
	// Fleet names the fleet; it labels every gossip packet so that other
	// fleets are rejected. Required.
	Fleet string `toml:"fleet"`
	// Bind is the address gossip listens on (UDP and TCP). Default "0.0.0.0:7946".
	Bind string `toml:"bind"`
	// Advertise is the address peers use to reach this agent. Default: Bind's.
	Advertise string `toml:"advertise"`
	// Join lists host:port or DNS names of peers, retried in the background.
	Join []string `toml:"join"`
	// KeyFile holds the AES-GCM keyring (see `prober keygen`).
	KeyFile string `toml:"key_file"`
}
