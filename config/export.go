package config

// Export is one destination for Results.
type Export struct {
	// Type is "jsonl" (one JSON Result per line) or "otlp".
	Type string `toml:"type"`
	// Name distinguishes exports in metrics and the spool. Default: the type
	// and index ("otlp-0").
	Name string `toml:"name"`
	// Path is the jsonl file; "-" or "" is standard output.
	Path string `toml:"path"`
}
