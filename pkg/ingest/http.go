package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	contentProto = "application/x-protobuf"
	contentJSON  = "application/json"
)

// HTTPHandler serves OTLP/HTTP: POST /v1/logs, /v1/traces and /v1/metrics
// with a protobuf or JSON body, optionally gzip-compressed. The answer uses
// the request's encoding.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, req *http.Request) {
		var m collogspb.ExportLogsServiceRequest
		ct, ok := r.readRequest(w, req, &m)
		if !ok {
			return
		}
		resp, err := r.ExportLogs(&m)
		if err != nil {
			writeStatus(w, ct, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeMessage(w, ct, resp)
	})
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		var m coltracepb.ExportTraceServiceRequest
		if ct, ok := r.readRequest(w, req, &m); ok {
			writeMessage(w, ct, r.ExportTraces(&m))
		}
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		var m colmetricspb.ExportMetricsServiceRequest
		if ct, ok := r.readRequest(w, req, &m); ok {
			writeMessage(w, ct, r.ExportMetrics(&m))
		}
	})
	return mux
}

// readRequest checks the token, bounds and decodes the body into m. On
// failure it has answered and returns ok=false.
func (r *Receiver) readRequest(w http.ResponseWriter, req *http.Request, m proto.Message) (ct string, ok bool) {
	ct, _, _ = mime.ParseMediaType(req.Header.Get("Content-Type"))
	if ct != contentProto && ct != contentJSON {
		r.count.badRequests.Inc()
		writeStatus(w, contentProto, http.StatusUnsupportedMediaType, "Content-Type must be application/x-protobuf or application/json")
		return contentProto, false
	}
	if !r.authorized(req.Header.Get("Authorization")) {
		r.count.badRequests.Inc()
		writeStatus(w, ct, http.StatusUnauthorized, "missing or wrong bearer token")
		return ct, false
	}
	limit := int64(r.o.MaxRequestBytes)
	if req.ContentLength > limit && req.Header.Get("Content-Encoding") == "" {
		r.count.badRequests.Inc()
		writeStatus(w, ct, http.StatusRequestEntityTooLarge, fmt.Sprintf("request is larger than %d bytes", limit))
		return ct, false
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, limit)
	switch req.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			r.count.badRequests.Inc()
			writeStatus(w, ct, http.StatusBadRequest, "body is not valid gzip")
			return ct, false
		}
		defer zr.Close()
		body = zr
	default:
		r.count.badRequests.Inc()
		writeStatus(w, ct, http.StatusUnsupportedMediaType, "Content-Encoding must be gzip or absent")
		return ct, false
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 && req.Header.Get("Content-Encoding") == "" {
		buf.Grow(int(req.ContentLength) + bytes.MinRead) // checked against limit above
	}
	_, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	b := buf.Bytes()
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || int64(len(b)) > limit:
		r.count.badRequests.Inc()
		writeStatus(w, ct, http.StatusRequestEntityTooLarge, fmt.Sprintf("request is larger than %d bytes", limit))
		return ct, false
	case err != nil:
		r.count.badRequests.Inc()
		writeStatus(w, ct, http.StatusBadRequest, "cannot read body: "+err.Error())
		return ct, false
	}
	if ct == contentJSON {
		b, err = hexIDsToBase64(b)
		if err == nil {
			err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
		}
	} else {
		err = proto.Unmarshal(b, m)
	}
	if err != nil {
		r.count.badRequests.Inc()
		writeStatus(w, ct, http.StatusBadRequest, "cannot decode OTLP request: "+err.Error())
		return ct, false
	}
	return ct, true
}

// hexIDsToBase64 rewrites traceId, spanId and parentSpanId: OTLP/JSON
// carries them as hex, while protojson expects base64 for bytes fields.
func hexIDsToBase64(b []byte) ([]byte, error) {
	if !bytes.Contains(b, []byte("Id")) && !bytes.Contains(b, []byte("_id")) {
		return b, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, e := range t {
				switch k {
				case "traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id":
					if s, ok := e.(string); ok && s != "" {
						if raw, err := hex.DecodeString(s); err == nil {
							t[k] = base64.StdEncoding.EncodeToString(raw)
						}
					}
				default:
					walk(e)
				}
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
	return json.Marshal(v)
}

func writeMessage(w http.ResponseWriter, ct string, m proto.Message) {
	var b []byte
	var err error
	if ct == contentJSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		http.Error(w, "cannot encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// writeStatus answers an error with a google.rpc.Status, as OTLP/HTTP asks.
func writeStatus(w http.ResponseWriter, ct string, code int, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
	var b []byte
	if ct == contentJSON {
		b, _ = protojson.Marshal(st)
	} else {
		b, _ = proto.Marshal(st)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// ServeHTTP serves OTLP/HTTP on ln until ctx ends, with deadlines that
// hold against silent clients.
func (r *Receiver) ServeHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           r.HTTPHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if r.o.TLS != nil {
		ln = tls.NewListener(ln, r.o.TLS)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
		err = <-errc
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
