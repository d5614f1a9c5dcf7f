package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// JSONL writes each Result as one JSON object per line (the form of
// `prober once -json`) to a file or to standard output. It is for local
// use and debugging; it keeps nothing for later delivery.
type JSONL struct {
	mu sync.Mutex
	w  io.Writer
	f  *os.File // nil when writing to a caller's writer
}

var _ Exporter = (*JSONL)(nil)

// NewJSONL opens path for appending ("" or "-" means stdout, the writer
// given).
func NewJSONL(path string, stdout io.Writer) (*JSONL, error) {
	if path == "" || path == "-" {
		return &JSONL{w: stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("jsonl export: %w", err)
	}
	return &JSONL{w: f, f: f}, nil
}

// Put writes r as one line.
func (j *JSONL) Put(_ context.Context, r report.Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("jsonl export: encoding result %s: %w", r.ID, err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.w.Write(b); err != nil {
		return fmt.Errorf("jsonl export: %w", err)
	}
	return nil
}

// Close closes the file, if NewJSONL opened one.
func (j *JSONL) Close(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	j.w = io.Discard
	return err
}
