package config

// Ingest configures the aggregator's OTLP receivers.
type Ingest struct {
	// GRPC is the OTLP/gRPC listen address. Default "127.0.0.1:4317".
	GRPC string `toml:"grpc"`
	// HTTP is the OTLP/HTTP listen address. Default "127.0.0.1:4318".
	HTTP string `toml:"http"`
}

func (in *Ingest) applyDefaults() {
	if in.GRPC == "" {
		in.GRPC = "127.0.0.1:4317"
	}
	if in.HTTP == "" {
		in.HTTP = "127.0.0.1:4318"
	}
}

func (in *Ingest) validate(p *problems, key string) {}
