package ingest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

func TestForward_DownstreamReceivesWhatWasIngested(t *testing.T) {
	down := startAggregator(t, t.TempDir(), "", "")
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			reg := telemetry.NewRegistry()
			addr := down.grpcAddr
			if proto == "http" {
				addr = down.httpAddr
			}
			f, err := NewForwarder(&config.Forward{Name: "down", Endpoint: addr, Protocol: proto, Insecure: true,
				QueueSize: 16, Timeout: config.Dur(5 * time.Second)}, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			up := &aggregator{dir: t.TempDir(), reg: reg, store: NewStore(100), forward: []*Forwarder{f}}
			up.start(t, "", "")
			t.Cleanup(up.stop)
			before := down.store.Accepted()
			r := run(map[string]int{"grpc": 1, "http": 2}[proto], "eu") // distinct per protocol
			if _, err := grpcClient(t, up.grpcAddr).Export(context.Background(), logsRequest(t, r)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the forwarded result", func() bool { return down.store.Accepted() == before+1 })
			if reg.Counter("vantage.aggregator.forward.sent", "", "forward", "down").Value() != 1 {
				t.Fatal("sent counter")
			}
		})
	}
}

func TestForward_SilentDownstream_NeverBlocksIngest_DropsCounted(t *testing.T) {
	// A downstream that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
	reg := telemetry.NewRegistry()
	f, err := NewForwarder(&config.Forward{Name: "silent", Endpoint: ln.Addr().String(), Protocol: "http", Insecure: true,
		QueueSize: 2, Timeout: config.Dur(300 * time.Millisecond)}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := &aggregator{dir: t.TempDir(), reg: reg, store: NewStore(1000), forward: []*Forwarder{f}}
	up.start(t, "", "")
	t.Cleanup(up.stop)
	c := grpcClient(t, up.grpcAddr)
	for i := 0; i < 40; i++ {
		if _, err := c.Export(context.Background(), logsRequest(t, run(i, "eu"))); err != nil {
			t.Fatal(err)
		}
	}
	if up.store.Accepted() != 40 {
		t.Fatalf("ingested %d of 40", up.store.Accepted())
	}
	if d := reg.Counter("vantage.aggregator.forward.dropped", "", "forward", "silent").Value(); d < 30 {
		t.Fatalf("dropped %d, want most of 40 with a queue of 2", d)
	}
}
