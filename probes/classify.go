package probes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// Error is an error that carries its class. Journeys wrap the failures they
// understand (an assertion, a rejected push, a stale read) with Errorf or
// Wrap; Classify reads the class back.
type Error struct {
	Type report.ErrorType
	// Probe marks a failure of the prober itself (status probe_error).
	Probe bool
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an error of class t, formatted like fmt.Errorf (so %w works).
func Errorf(t report.ErrorType, format string, args ...any) error {
	return &Error{Type: t, Err: fmt.Errorf(format, args...)}
}

// Wrap gives err the class t; it returns nil for a nil err.
func Wrap(t report.ErrorType, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Type: t, Err: err}
}

// Internal marks err as the prober's own failure: the run ends as
// probe_error and never counts against the product.
func Internal(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Type: report.ErrProbeInternal, Probe: true, Err: err}
}

// Classify is the one place that maps an error to a status and class.
// Explicit classes win; then deadlines, DNS, TLS and connection errors are
// recognised from the standard library's types. Anything else is a protocol
// failure of the product.
func Classify(err error) (report.Status, report.ErrorType) {
	if err == nil {
		return report.StatusPass, ""
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Probe || e.Type == report.ErrProbeInternal {
			return report.StatusProbeError, report.ErrProbeInternal
		}
		return report.StatusFail, e.Type
	}
	if errors.Is(err, context.Canceled) {
		// Only the agent cancels a run (shutdown, reload): not the product's fault.
		return report.StatusProbeError, report.ErrProbeInternal
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return report.StatusFail, report.ErrTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return report.StatusFail, report.ErrTimeout
		}
		return report.StatusFail, report.ErrDNS
	}
	if isTLS(err) {
		return report.StatusFail, report.ErrTLS
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return report.StatusFail, report.ErrTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) {
		return report.StatusFail, report.ErrConnect
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return report.StatusFail, report.ErrConnect
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return report.StatusFail, report.ErrProtocol
	}
	return report.StatusFail, report.ErrProtocol
}

func isTLS(err error) bool {
	var (
		certInvalid  x509.CertificateInvalidError
		unknownAuth  x509.UnknownAuthorityError
		hostname     x509.HostnameError
		verification *tls.CertificateVerificationError
		recordHeader tls.RecordHeaderError
		alert        tls.AlertError
		opErr        *net.OpError
	)
	// crypto/tls reports an alert from the peer (a rejected client
	// certificate, a protocol version mismatch) as an *net.OpError whose Op
	// is "remote error".
	return errors.As(err, &certInvalid) || errors.As(err, &unknownAuth) ||
		errors.As(err, &hostname) || errors.As(err, &verification) ||
		errors.As(err, &recordHeader) || errors.As(err, &alert) ||
		(errors.As(err, &opErr) && opErr.Op == "remote error")
}
