package verdict

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// The durable state is one small meta record (membership, open conditions,
// counters; JSON) and one binary record per journey, so that a save writes
// only the journeys that changed since the previous one.

// stateVersion is bumped when the encoding changes incompatibly.
const stateVersion = 2

// Bounds on what a stored record may hold.
const (
	maxStateBytes   = 256 << 20 // a whole-state blob (MarshalState)
	maxMetaBytes    = 16 << 20
	maxRecordBytes  = 16 << 20 // one journey
	maxTextLen      = 64 << 10 // kind, runbook, error texts
	maxComponents   = 32
	maxCellsPerJrny = 1 << 16
)

type meta struct {
	Version  int                  `json:"version"`
	Members  Membership           `json:"members"`
	Open     map[string]Condition `json:"open"`
	Counters Counters             `json:"counters"`
}

// journeyRecord is a journey's name and durable record.
type journeyRecord struct {
	name string
	data []byte
}

// StateChanges is what a save must write: the meta record, the journeys
// changed since the last MarkSaved (encode each with AppendRecord, so that
// a store can write them in bounded batches) and the journeys dropped.
type StateChanges struct {
	Meta     []byte
	Journeys []string
	Removed  []string
}

// Changes lists the durable records changed since the last MarkSaved.
// Call MarkSaved once they are stored; until then every call returns them
// again.
func (t *Tracker) Changes() (StateChanges, error) {
	m, err := t.marshalMeta()
	if err != nil {
		return StateChanges{}, err
	}
	ch := StateChanges{Meta: m, Removed: sortedKeys(t.removed)}
	for _, name := range t.journeyNames() {
		if t.journeys[name].unsaved {
			ch.Journeys = append(ch.Journeys, name)
		}
	}
	return ch, nil
}

// AppendRecord appends the durable record of journey to b (b unchanged
// when the journey is unknown).
func (t *Tracker) AppendRecord(b []byte, journey string) []byte {
	if j := t.journeys[journey]; j != nil {
		return j.appendRecord(b)
	}
	return b
}

// MarkSaved records that the last Changes are stored.
func (t *Tracker) MarkSaved() {
	for _, j := range t.journeys {
		j.unsaved = false
	}
	clear(t.removed)
}

func (t *Tracker) marshalMeta() ([]byte, error) {
	return json.Marshal(meta{Version: stateVersion, Members: t.members, Open: t.open, Counters: t.counters})
}

// RestoreRecords replaces the state with the meta record and the journey
// records a store holds (as written from Changes). The record bytes are
// only read during the call. On error the Tracker is unchanged.
func (t *Tracker) RestoreRecords(metaRec []byte, journeys iter.Seq2[string, []byte]) error {
	return t.restore(metaRec, journeys, false)
}

func (t *Tracker) restore(metaRec []byte, journeys iter.Seq2[string, []byte], unsaved bool) error {
	if len(metaRec) > maxMetaBytes {
		return fmt.Errorf("verdict: state meta of %d bytes exceeds %d", len(metaRec), maxMetaBytes)
	}
	var m meta
	if err := json.Unmarshal(metaRec, &m); err != nil {
		return fmt.Errorf("verdict: decode state: %w", err)
	}
	if m.Version != stateVersion {
		return fmt.Errorf("verdict: state version %d, want %d", m.Version, stateVersion)
	}
	js := map[string]*journeyState{}
	var err error
	for name, rec := range journeys {
		if name == "" || len(name) > maxFieldLen {
			err = fmt.Errorf("verdict: state: journey name of %d bytes", len(name))
			break
		}
		if js[name] != nil {
			err = fmt.Errorf("verdict: state: journey %q twice", name)
			break
		}
		var j *journeyState
		if j, err = decodeJourney(rec); err != nil {
			err = fmt.Errorf("verdict: state: journey %q: %w", name, err)
			break
		}
		j.unsaved = unsaved
		js[name] = j
	}
	if err != nil {
		return err
	}
	if m.Open == nil {
		m.Open = map[string]Condition{}
	}
	t.journeys, t.members, t.open, t.counters = js, m.Members, m.Open, m.Counters
	t.membersGen++
	t.names = nil
	clear(t.removed)
	// Recompute the derived machines so Snapshot is right before the next Evaluate.
	for _, j := range t.journeys {
		failed := failedSlots(j)
		for i := range j.cells {
			j.cells[i].replay(&t.cfg, failed, t.confirmable(j.cells[i].region))
		}
		j.dirty = true
	}
	return nil
}

// blobMagic starts a whole-state blob.
const blobMagic = "vantage-verdict\x02"

// MarshalState encodes the whole state as one blob (meta record, then
// every journey record); RestoreState reads it back.
func (t *Tracker) MarshalState() ([]byte, error) {
	m, err := t.marshalMeta()
	if err != nil {
		return nil, err
	}
	b := append([]byte(blobMagic), binary.AppendUvarint(nil, uint64(len(m)))...)
	b = append(b, m...)
	for _, name := range t.journeyNames() {
		b = appendString(b, name)
		rec := t.journeys[name].appendRecord(nil)
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	return b, nil
}

// RestoreState replaces the state with one from MarshalState. Every
// journey is then unsaved (the next Changes returns it). On error the
// Tracker is unchanged.
func (t *Tracker) RestoreState(b []byte) error {
	if len(b) > maxStateBytes {
		return fmt.Errorf("verdict: state of %d bytes exceeds %d", len(b), maxStateBytes)
	}
	if len(b) < len(blobMagic) || string(b[:len(blobMagic)]) != blobMagic {
		return errors.New("verdict: state: not a state blob of this version")
	}
	d := &dec{b: b[len(blobMagic):]}
	metaRec := d.bytes(maxMetaBytes)
	if d.err != nil {
		return fmt.Errorf("verdict: state: meta: %w", d.err)
	}
	var recs []journeyRecord
	for len(d.b) > 0 && d.err == nil {
		name := d.str(maxFieldLen)
		recs = append(recs, journeyRecord{name: name, data: d.bytes(maxRecordBytes)})
	}
	if d.err != nil {
		return fmt.Errorf("verdict: state: %w", d.err)
	}
	return t.restore(metaRec, func(yield func(string, []byte) bool) {
		for _, r := range recs {
			if !yield(r.name, r.data) {
				return
			}
		}
	}, true)
}

// Codes of the enumerations in a record.
var (
	stateCodes   = []State{StateOK, StateDegraded, StateFailing, StateBlind, StateMissing, StateNoData}
	scopeCodes   = []Scope{ScopeNone, ScopeRegional, ScopeGlobal, ScopeUnknown}
	triggerCodes = []report.Trigger{report.TriggerSchedule, report.TriggerConfirm, report.TriggerManual}
	statusCodes  = []report.Status{report.StatusPass, report.StatusFail, report.StatusProbeError}
)

const recordVersion = 2

// appendRecord appends the journey's durable record to b.
func (j *journeyState) appendRecord(b []byte) []byte {
	b = append(b, recordVersion)
	b = appendString(b, j.kind)
	b = binary.AppendVarint(b, int64(j.interval))
	b = binary.AppendUvarint(b, uint64(len(j.components)))
	for _, c := range j.components {
		b = appendString(b, c)
	}
	b = appendString(b, j.runbook)
	b = binary.AppendVarint(b, j.lastSeen)
	b = append(b, byte(slices.Index(scopeCodes, j.scope)))
	b = binary.AppendUvarint(b, uint64(len(j.cells)))
	for i := range j.cells {
		c := &j.cells[i]
		b = appendString(b, c.region)
		b = append(b, byte(slices.Index(stateCodes, c.state)))
		b = binary.AppendVarint(b, c.lastData)
		b = c.base.append(b)
		b = binary.AppendUvarint(b, uint64(len(c.agents)))
		for _, a := range c.agents {
			b = appendString(b, a)
		}
		b = binary.AppendUvarint(b, uint64(len(c.runs)))
		prev := int64(0)
		for i, r := range c.runs {
			if i == 0 {
				b = binary.AppendVarint(b, r.slot)
			} else { // slots are mostly whole seconds apart: 2 bytes
				delta := uint64(r.slot - prev)
				b = binary.AppendUvarint(b, delta%1e9)
				b = binary.AppendUvarint(b, delta/1e9)
			}
			prev = r.slot
			b = binary.AppendUvarint(b, uint64(r.agent))
			b = append(b, byte(r.status), r.trigger)
		}
		b = binary.AppendUvarint(b, uint64(len(c.extIDs())))
		for _, e := range c.extIDs() {
			b = binary.AppendVarint(b, e.slot)
			b = binary.LittleEndian.AppendUint64(b, e.id)
		}
		var flags byte
		if c.latest.present() {
			flags |= 1
		}
		if c.lastFail != nil {
			flags |= 2
		}
		b = append(b, flags)
		if c.latest.present() {
			b = c.latest.append(b)
		}
		if c.lastFail != nil {
			b = c.lastFail.append(b)
		}
	}
	return b
}

func (m *machine) append(b []byte) []byte {
	if m.failing {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(m.consecFail))
	b = binary.AppendUvarint(b, uint64(m.consecPass))
	b = binary.AppendVarint(b, m.runStart)
	return binary.AppendVarint(b, m.firstFail)
}

func (s *sample) append(b []byte) []byte {
	d := s.d()
	b = append(b, s.packed)
	b = appendString(b, s.ids)
	b = binary.AppendUvarint(b, uint64(s.idLen))
	for _, x := range []string{d.agent, d.errorType, d.err, d.failingStep} {
		b = appendString(b, x)
	}
	b = binary.AppendVarint(b, s.slot)
	b = binary.AppendVarint(b, s.duration)
	return append(b, s.trigger, s.status)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeJourney reads a record from appendRecord; it copies what it keeps.
func decodeJourney(rec []byte) (*journeyState, error) {
	if len(rec) > maxRecordBytes {
		return nil, fmt.Errorf("record of %d bytes exceeds %d", len(rec), maxRecordBytes)
	}
	d := &dec{b: rec}
	if v := d.byte(); d.err == nil && v != recordVersion {
		return nil, fmt.Errorf("record version %d, want %d", v, recordVersion)
	}
	j := &journeyState{kind: intern(d.str(maxTextLen))}
	j.interval = time.Duration(d.varint())
	if d.err == nil && j.interval <= 0 {
		d.fail("interval not positive")
	}
	if n := d.count(maxComponents); n > 0 {
		j.components = make([]string, n)
		for i := range j.components {
			j.components[i] = intern(d.str(maxTextLen))
		}
		if d.err == nil && !slices.IsSorted(j.components) {
			d.fail("components not sorted")
		}
	}
	j.runbook = d.str(maxTextLen)
	j.lastSeen = d.varint()
	j.scope = code(d, scopeCodes, "scope")
	n := d.count(maxCellsPerJrny)
	j.cells = make([]cell, 0, n)
	for range n {
		region := intern(d.str(maxFieldLen))
		if d.err == nil && region == "" {
			d.fail("empty region")
		}
		if d.err == nil && len(j.cells) > 0 && region <= j.cells[len(j.cells)-1].region {
			d.fail(fmt.Sprintf("region %q out of order", region))
		}
		c := &cell{region: region, state: code(d, stateCodes, "state"), lastData: d.varint()}
		c.base = d.machine()
		if na := d.count(maxAgentsPerCell); na > 0 {
			c.agents = make([]string, na)
			for i := range c.agents {
				if c.agents[i] = intern(d.str(maxFieldLen)); d.err == nil && c.agents[i] == "" {
					d.fail("empty agent")
				}
			}
		}
		if nr := d.count(len(d.b)); nr > 0 {
			c.runs = make([]run, nr)
			prev := int64(0)
			for i := range c.runs {
				r := &c.runs[i]
				if i == 0 {
					r.slot = d.varint()
				} else {
					frac, sec := d.uvarint(), d.uvarint()
					if frac >= 1e9 || sec > math.MaxInt64/uint64(time.Second) || sec*1e9+frac > math.MaxInt64-uint64(max(prev, 0)) {
						d.fail("slot out of range")
					}
					r.slot = prev + int64(sec*1e9+frac)
				}
				prev = r.slot
				if a := d.uvarint(); d.err == nil && a >= uint64(len(c.agents)) {
					d.fail("run agent out of range")
				} else {
					r.agent = uint16(a)
				}
				if st := d.byte(); d.err == nil && st > byte(runProbeError) {
					d.fail("run status out of range")
				} else {
					r.status = runStatus(st)
				}
				if tr := d.byte(); d.err == nil && int(tr&^runOtherID) >= len(triggerCodes) {
					d.fail("run trigger out of range")
				} else {
					r.trigger = tr
				}
			}
		}
		if ne := d.count(len(d.b)); ne > 0 {
			ext := make([]extID, ne)
			for i := range ext {
				ext[i] = extID{slot: d.varint(), id: d.u64()}
			}
			c.ext = &ext
		}
		flags := d.byte()
		if d.err == nil && flags&^3 != 0 {
			d.fail("unknown sample flags")
		}
		if flags&1 != 0 {
			c.latest = d.sample()
		}
		if flags&2 != 0 {
			s := d.sample()
			c.lastFail = &s
		}
		if d.err != nil {
			break
		}
		j.cells = append(j.cells, *c)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return nil, d.err
	}
	return j, nil
}

// dec reads a record; the first problem sticks in err and every later
// read returns zero values.
type dec struct {
	b   []byte
	err error
}

var errShort = errors.New("record truncated")

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = errors.New(what)
	}
}

func (d *dec) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail(errShort.Error())
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail(errShort.Error())
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// count reads a length that must not exceed limit nor the bytes left
// (every element takes at least one byte).
func (d *dec) count(limit int) int {
	v := d.uvarint()
	if d.err == nil && (v > uint64(limit) || v > uint64(len(d.b))) {
		d.fail(fmt.Sprintf("count %d out of range", v))
	}
	if d.err != nil {
		return 0
	}
	return int(v)
}

func (d *dec) bytes(limit int) []byte {
	v := d.uvarint()
	if d.err == nil && (v > uint64(limit) || v > uint64(len(d.b))) {
		d.fail(fmt.Sprintf("length %d out of range", v))
	}
	if d.err != nil {
		return nil
	}
	out := d.b[:v]
	d.b = d.b[v:]
	return out
}

func (d *dec) str(limit int) string { return string(d.bytes(limit)) }

func (d *dec) machine() machine {
	var m machine
	switch d.byte() {
	case 0:
	case 1:
		m.failing = true
	default:
		d.fail("bad machine flag")
	}
	cf, cp := d.uvarint(), d.uvarint()
	if cf > math.MaxInt32 || cp > math.MaxInt32 {
		d.fail("machine count out of range")
	}
	m.consecFail, m.consecPass = int32(cf), int32(cp)
	m.runStart, m.firstFail = d.varint(), d.varint()
	return m
}

func (d *dec) sample() sample {
	packed, ids := d.byte(), d.str(2*maxFieldLen)
	idLen := d.uvarint()
	if d.err == nil && (packed&^(packedID|packedTrace) != 0 || idLen == 0 || idLen > uint64(len(ids))) {
		d.fail("bad sample ids")
	}
	det := sampleDetail{agent: d.str(maxFieldLen), errorType: d.str(maxFieldLen), err: d.str(maxTextLen), failingStep: d.str(maxTextLen)}
	slot, duration := d.varint(), d.varint()
	trig, st := code(d, triggerCodes, "trigger"), code(d, statusCodes, "status")
	if d.err != nil {
		return sample{}
	}
	s := newSample("", "", det, slot, duration, trig, st)
	s.ids, s.idLen, s.packed = ids, uint16(idLen), packed
	return s
}

func code[T any](d *dec, codes []T, what string) T {
	i := int(d.byte())
	if d.err == nil && i >= len(codes) {
		d.fail("bad " + what + " code")
	}
	if d.err != nil {
		var zero T
		return zero
	}
	return codes[i]
}
