package harness

import (
	"strings"
	"testing"
	"time"
)

func TestLedgerOverlaps(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	line := func(s int, ev, node, pod string) string {
		return LedgerEntry{At: at(s), Event: ev, Handle: "h1", Node: node, Pod: pod}.String()
	}
	cases := []struct {
		name  string
		lines []string
		want  int
	}{
		{"handed over", []string{line(0, "start", "n0", "ns/a"), line(10, "stop", "n0", "ns/a"), line(11, "start", "n1", "ns/b")}, 0},
		{"overlap", []string{line(0, "start", "n0", "ns/a"), line(11, "start", "n1", "ns/b"), line(12, "stop", "n0", "ns/a")}, 1},
		{"old never stopped", []string{line(0, "start", "n0", "ns/a"), line(11, "start", "n1", "ns/b"), line(20, "stop", "n1", "ns/b")}, 1},
		{"same node restart", []string{line(0, "start", "n0", "ns/a"), line(1, "stop", "n0", "ns/a"), line(2, "start", "n0", "ns/a")}, 0},
		{"same node, new pod first", []string{line(0, "start", "n0", "ns/a"), line(1, "start", "n0", "ns/b")}, 0},
		{"stop without start (before the window)", []string{line(5, "stop", "n0", "ns/a"), line(6, "start", "n1", "ns/b")}, 0},
		{"stop without start, late", []string{line(5, "start", "n1", "ns/b"), line(6, "stop", "n0", "ns/a")}, 1},
	}
	for _, c := range cases {
		es, err := ParseLedger(strings.NewReader(strings.Join(c.lines, "\n") + "\n"))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := Overlaps(WriterIntervals(es)); len(got) != c.want {
			t.Errorf("%s: %d overlaps %v, want %d", c.name, len(got), got, c.want)
		}
	}
	if _, err := ParseLedger(strings.NewReader("garbage here\n")); err == nil {
		t.Error("a malformed line parsed")
	}
	// Another handle never conflicts.
	es := []LedgerEntry{
		{At: at(0), Event: "start", Handle: "h1", Node: "n0", Pod: "ns/a"},
		{At: at(1), Event: "start", Handle: "h2", Node: "n1", Pod: "ns/b"},
	}
	if got := Overlaps(WriterIntervals(es)); len(got) != 0 {
		t.Errorf("different handles: %v", got)
	}
}
