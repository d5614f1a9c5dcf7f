package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxControlBody bounds a control request; a fault is a few hundred bytes.
const maxControlBody = 64 << 10

// ControlHandler serves the lab's control API:
//
//	GET    /faults        the active faults
//	POST   /faults        add a fault (JSON Fault; returns it with its ID)
//	DELETE /faults/{id}   remove one fault
//	DELETE /faults        remove every fault
//	GET    /edges         the edges and their addresses
func ControlHandler(t *FaultTable, edges func() []*Edge) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, t.List())
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid fault JSON: " + err.Error()})
			return
		}
		added, err := t.Add(f)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, added)
	})
	mux.HandleFunc("DELETE /faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !t.Remove(r.PathValue("id")) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no fault %q", r.PathValue("id"))})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		t.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /edges", func(w http.ResponseWriter, r *http.Request) {
		type edgeJSON struct {
			Name, Region, HTTPAddr, SSHAddr string
		}
		var out []edgeJSON
		for _, e := range edges() {
			out = append(out, edgeJSON{e.Name, e.Region, e.HTTPAddr, e.SSHAddr})
		}
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
