package lab

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// GitFault is one set of injected failures. The zero GitFault injects nothing.
type GitFault struct {
	// UploadPackStatus, when non-zero, answers every upload-pack request
	// (its ref advertisement and its pack) with this HTTP status.
	UploadPackStatus int
	// ReceivePackStatus does the same for receive-pack (pushes).
	ReceivePackStatus int
	// AdvertisementDelay waits this long before serving a ref advertisement
	// (GET …/info/refs).
	AdvertisementDelay time.Duration
	// StallAfterBytes, when positive, stops a pack response (upload-pack
	// POST, or upload-pack output over SSH) after this many bytes and holds
	// the connection open, sending nothing, until the client gives up.
	StallAfterBytes int
	// StallAdvertisement stalls the ref advertisement the same way.
	StallAdvertisement bool
	// ReplicaLag delays the moment reads (ref advertisement, fetch, the
	// branch API) see a ref update after a write.
	ReplicaLag time.Duration
}

// Faults holds the current GitFault; it is safe for concurrent use and may be
// changed while servers run. A nil *Faults injects nothing.
type Faults struct {
	mu sync.Mutex
	f  GitFault
}

// Set replaces the current faults.
func (fs *Faults) Set(f GitFault) {
	fs.mu.Lock()
	fs.f = f
	fs.mu.Unlock()
}

// Get returns the current faults.
func (fs *Faults) Get() GitFault {
	if fs == nil {
		return GitFault{}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.f
}

func (fs *Faults) replicaLag() time.Duration { return fs.Get().ReplicaLag }

// Wrap returns h with the current faults applied to git smart-HTTP
// requests; other requests pass through unchanged.
func (fs *Faults) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := fs.Get()
		service := r.URL.Query().Get("service")
		advert := strings.HasSuffix(r.URL.Path, "/info/refs")
		switch {
		case advert && service == "":
		case strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			service = "git-upload-pack"
		case strings.HasSuffix(r.URL.Path, "/git-receive-pack"):
			service = "git-receive-pack"
		}
		if (service == "git-upload-pack" && f.UploadPackStatus != 0) ||
			(service == "git-receive-pack" && f.ReceivePackStatus != 0) {
			code := f.UploadPackStatus
			if service == "git-receive-pack" {
				code = f.ReceivePackStatus
			}
			http.Error(w, "injected fault", code)
			return
		}
		if advert && f.AdvertisementDelay > 0 {
			select {
			case <-time.After(f.AdvertisementDelay):
			case <-r.Context().Done():
				return
			}
		}
		if advert && f.StallAdvertisement {
			<-r.Context().Done()
			return
		}
		if service == "git-upload-pack" && !advert && f.StallAfterBytes > 0 {
			w = &stallWriter{ResponseWriter: w, left: f.StallAfterBytes, done: r.Context().Done()}
		}
		h.ServeHTTP(w, r)
	})
}

// stallWriter passes through the first left bytes, flushes them, then
// blocks until done: the server goes silent mid-response.
type stallWriter struct {
	http.ResponseWriter
	left int
	done <-chan struct{}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if s.left <= 0 {
		<-s.done
		return 0, http.ErrHandlerTimeout
	}
	n := len(p)
	if n > s.left {
		p = p[:s.left]
	}
	m, err := s.ResponseWriter.Write(p)
	s.left -= m
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
	if err != nil || s.left > 0 {
		return m, err
	}
	<-s.done
	return m, http.ErrHandlerTimeout
}

// Flush forwards to the underlying writer.
func (s *stallWriter) Flush() {
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
