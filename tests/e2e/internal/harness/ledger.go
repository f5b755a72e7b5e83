package harness

// The writer ledger: the runtime player appends one line to
// <state-dir>/writers.log whenever a stand-in process of a pod that mounts a
// CSI volume starts, and one when it is known stopped (it exited, or was
// killed by a watchdog fire or a power-off, or was stopped because the pod was
// deleted):
//
//	<RFC3339Nano> start|stop <volumeHandle> <node> <namespace>/<pod>
//
// A start is written right after the process is forked (before it can open
// anything), a stop only once the whole process group and its cgroup are gone,
// so every interval covers the process's real lifetime. That is what proves
// "never two writers": no two intervals of the same volume handle on different
// nodes overlap.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

const (
	// LedgerFile is the ledger's name under the player's --state-dir.
	LedgerFile = "writers.log"
	// AnnFault on a Node drives the runtime player's node faults: "off"
	// (powered off) or "partitioned" (alive, cut off from the API server);
	// absent: normal.
	AnnFault = "e2e.edgewarden.io/fault"
	// LabelStandin=true on a pod makes the runtime player run the SQL Server
	// stand-in for it even without app=sqledge (so without an agent): the
	// vanilla node-loss baseline.
	LabelStandin = "e2e.edgewarden.io/standin"
)

// LedgerEntry is one line of the ledger.
type LedgerEntry struct {
	At     time.Time
	Event  string // "start" or "stop"
	Handle string // the CSI volume handle
	Node   string
	Pod    string // namespace/name
}

func (e LedgerEntry) String() string {
	return fmt.Sprintf("%s %s %s %s %s", e.At.UTC().Format(time.RFC3339Nano), e.Event, e.Handle, e.Node, e.Pod)
}

// ParseLedger reads ledger lines; malformed lines are an error.
func ParseLedger(r io.Reader) ([]LedgerEntry, error) {
	var out []LedgerEntry
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 5 || (f[1] != "start" && f[1] != "stop") {
			return out, fmt.Errorf("ledger line %d: %q: want <time> start|stop <handle> <node> <ns>/<pod>", n, line)
		}
		at, err := time.Parse(time.RFC3339Nano, f[0])
		if err != nil {
			return out, fmt.Errorf("ledger line %d: %v", n, err)
		}
		out = append(out, LedgerEntry{At: at, Event: f[1], Handle: f[2], Node: f[3], Pod: f[4]})
	}
	return out, sc.Err()
}

// ReadLedger parses the ledger file at path (absent: empty).
func ReadLedger(path string) ([]LedgerEntry, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseLedger(f)
}

// WriterInterval is one stand-in's lifetime on one node for one volume.
// A zero Start means "before the ledger's first line"; a zero Stop means
// "still running".
type WriterInterval struct {
	Handle, Node, Pod string
	Start, Stop       time.Time
}

func (w WriterInterval) String() string {
	s, e := "…", "running"
	if !w.Start.IsZero() {
		s = w.Start.UTC().Format("15:04:05.000")
	}
	if !w.Stop.IsZero() {
		e = w.Stop.UTC().Format("15:04:05.000")
	}
	return fmt.Sprintf("%s on %s by %s [%s, %s]", w.Handle, w.Node, w.Pod, s, e)
}

// WriterIntervals pairs the starts and stops of each (handle, node, pod) in
// time order.
func WriterIntervals(entries []LedgerEntry) []WriterInterval {
	es := append([]LedgerEntry(nil), entries...)
	sort.SliceStable(es, func(i, j int) bool { return es[i].At.Before(es[j].At) })
	open := map[string]int{} // key -> index in out
	var out []WriterInterval
	for _, e := range es {
		key := e.Handle + "\x00" + e.Node + "\x00" + e.Pod
		switch e.Event {
		case "start":
			if _, ok := open[key]; ok {
				continue // a second start without a stop: the first one stands
			}
			out = append(out, WriterInterval{Handle: e.Handle, Node: e.Node, Pod: e.Pod, Start: e.At})
			open[key] = len(out) - 1
		case "stop":
			if i, ok := open[key]; ok {
				out[i].Stop = e.At
				delete(open, key)
			} else {
				out = append(out, WriterInterval{Handle: e.Handle, Node: e.Node, Pod: e.Pod, Stop: e.At})
			}
		}
	}
	return out
}

// Overlaps lists every pair of intervals of the same volume handle on
// different nodes that overlap in time: two writers at once.
func Overlaps(iv []WriterInterval) []string {
	before := func(a, b time.Time) bool { // a < b, zero a = -inf, zero b = +inf
		return a.IsZero() || b.IsZero() || a.Before(b)
	}
	var out []string
	for i := range iv {
		for j := i + 1; j < len(iv); j++ {
			a, b := iv[i], iv[j]
			if a.Handle != b.Handle || a.Node == b.Node {
				continue
			}
			if before(a.Start, b.Stop) && before(b.Start, a.Stop) {
				out = append(out, fmt.Sprintf("two writers of %s: %v and %v", a.Handle, a, b))
			}
		}
	}
	return out
}
