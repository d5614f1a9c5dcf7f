package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Duration is a TOML duration. Only strings are accepted ("30s", "1m30s"):
// BurntSushi/toml would read a bare integer as nanoseconds, a classic way to
// configure a 5 ns timeout by accident. A bad value does not stop decoding;
// it is reported with every other problem by validation.
type Duration struct {
	D   time.Duration
	err string
}

// Dur returns a Duration of d.
func Dur(d time.Duration) Duration { return Duration{D: d} }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			d.err = fmt.Sprintf("invalid duration %q (want a string such as \"30s\" or \"1m30s\")", x)
			return nil
		}
		if p < 0 {
			d.err = fmt.Sprintf("negative duration %q", x)
			return nil
		}
		d.D = p
	case int64:
		d.err = fmt.Sprintf("duration must be a string such as \"%ds\", not the integer %d (which would mean %d nanoseconds)", x, x, x)
	default:
		d.err = fmt.Sprintf("duration must be a string such as \"30s\", not %T", v)
	}
	return nil
}

// MarshalText writes the duration as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.D.String()), nil }

func (d Duration) problem() string { return d.err }

// IsZero reports whether the duration is unset.
func (d Duration) IsZero() bool { return d.D == 0 && d.err == "" }

// Secret is a reference to a secret value: "env:NAME" reads an environment
// variable, "file:/path" reads a file (a trailing newline is dropped). The
// reference is resolved when the config is loaded. String and every
// formatting verb print the reference, never the value.
type Secret struct {
	Ref   string
	value string
	err   string
}

// UnmarshalTOML implements toml.Unmarshaler.
func (s *Secret) UnmarshalTOML(v any) error {
	str, ok := v.(string)
	if !ok {
		s.err = fmt.Sprintf("secret must be a string reference \"env:NAME\" or \"file:/path\", not %T", v)
		return nil
	}
	s.Ref = str
	if !strings.HasPrefix(str, "env:") && !strings.HasPrefix(str, "file:") {
		// The value is not echoed: it may well be the secret itself, pasted inline.
		s.err = "secret must be a reference \"env:NAME\" or \"file:/path\"; inline secrets are not accepted"
		s.Ref = ""
	}
	return nil
}

// SecretRef returns a Secret for ref without resolving it (for tests and defaults).
func SecretRef(ref string) Secret { return Secret{Ref: ref} }

// SecretValue returns a resolved Secret holding v (for tests).
func SecretValue(ref, v string) Secret { return Secret{Ref: ref, value: v} }

// resolve reads the referenced value. lookup is os.LookupEnv in production.
func (s *Secret) resolve(lookup func(string) (string, bool)) {
	if s.Ref == "" || s.err != "" {
		return
	}
	switch {
	case strings.HasPrefix(s.Ref, "env:"):
		name := strings.TrimPrefix(s.Ref, "env:")
		v, ok := lookup(name)
		if !ok || v == "" {
			s.err = fmt.Sprintf("secret %s: environment variable %s is not set", s.Ref, name)
			return
		}
		s.value = v
	case strings.HasPrefix(s.Ref, "file:"):
		path := strings.TrimPrefix(s.Ref, "file:")
		st, err := os.Stat(path)
		if err != nil {
			s.err = fmt.Sprintf("secret %s: cannot read the file", s.Ref)
			return
		}
		if st.Size() > maxSecretBytes {
			s.err = fmt.Sprintf("secret %s: file is larger than %d bytes", s.Ref, maxSecretBytes)
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			s.err = fmt.Sprintf("secret %s: cannot read the file", s.Ref)
			return
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			s.err = fmt.Sprintf("secret %s: file is empty", s.Ref)
			return
		}
		s.value = v
	}
}

// maxSecretBytes bounds a secret file (a private key is a few KiB).
const maxSecretBytes = 64 << 10

// Value returns the resolved secret. Never log it.
func (s Secret) Value() string { return s.value }

// IsSet reports whether a reference was configured.
func (s Secret) IsSet() bool { return s.Ref != "" }

// String returns the reference, never the value.
func (s Secret) String() string { return s.Ref }

// GoString returns the reference, never the value.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.Ref) }

// MarshalText writes the reference, never the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Ref), nil }

func (s Secret) problem() string { return s.err }

// problemer is implemented by field types that record their own decode problems.
type problemer interface{ problem() string }
