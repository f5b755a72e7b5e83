package main

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"edgewarden.io/e2e/internal/harness"
)

// The watchdog stand-in as an agent sees it: a device it opens
// O_WRONLY|O_NONBLOCK and writes to.
func TestWatchdogArmFeedDisarmFire(t *testing.T) {
	dir := t.TempDir()
	var fired atomic.Int32
	w, err := newWatchdog(dir, "n1", 300*time.Millisecond, func(string) { fired.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(filepath.Join(dir, "watchdog-n1"))
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("no FIFO: %v %v", st, err)
	}
	// The agent's open never fails for want of a reader.
	fd, err := syscall.Open(w.path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open O_WRONLY|O_NONBLOCK: %v", err)
	}
	dev := os.NewFile(uintptr(fd), w.path)
	defer dev.Close()
	write := func(s string) {
		t.Helper()
		if _, err := dev.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}

	// Not armed: no fire however long nothing comes.
	time.Sleep(500 * time.Millisecond)
	if fired.Load() != 0 {
		t.Fatal("fired before it was armed")
	}
	// Armed and fed: no fire.
	for range 10 {
		write("1")
		time.Sleep(100 * time.Millisecond)
	}
	if fired.Load() != 0 {
		t.Fatal("fired while fed")
	}
	// The magic close disarms it.
	write("V")
	time.Sleep(600 * time.Millisecond)
	if fired.Load() != 0 {
		t.Fatal("fired after the magic close")
	}
	// Armed again, then starved: it fires once, about timeout later.
	write("1")
	t0 := time.Now()
	for fired.Load() == 0 && time.Since(t0) < 3*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if fired.Load() != 1 {
		t.Fatalf("fired %d times, want 1", fired.Load())
	}
	if d := time.Since(t0); d < 290*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("fired %v after the last feed, want about 300ms", d)
	}
	time.Sleep(500 * time.Millisecond)
	if fired.Load() != 1 {
		t.Fatalf("fired again without being armed (%d)", fired.Load())
	}
	// Powered off: bytes are ignored; back on: disarmed until the next byte.
	w.power(false)
	write("1")
	time.Sleep(500 * time.Millisecond)
	if fired.Load() != 1 {
		t.Fatal("a powered-off watchdog armed")
	}
	w.power(true)
	time.Sleep(400 * time.Millisecond)
	if fired.Load() != 1 {
		t.Fatal("a watchdog fired after power-on without a byte")
	}
}

func TestLedgerLines(t *testing.T) {
	dir := t.TempDir()
	l, err := openLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := volumeHandles([]string{harness.CSIVolumeName(harness.DriverName, "vol-1"), "not-csi"})
	if len(h) != 1 || h[0] != "vol-1" {
		t.Fatalf("handles %v", h)
	}
	l.write("start", h, "n0", "ns/a")
	l.write("stop", h, "n0", "ns/a")
	l.write("start", nil, "n0", "ns/b") // no CSI volume: no line
	es, err := harness.ReadLedger(filepath.Join(dir, harness.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Event != "start" || es[1].Event != "stop" || es[0].Handle != "vol-1" || es[1].Pod != "ns/a" || es[0].Node != "n0" {
		t.Fatalf("ledger %+v", es)
	}
	iv := harness.WriterIntervals(es)
	if len(iv) != 1 || iv[0].Start.IsZero() || iv[0].Stop.IsZero() {
		t.Fatalf("intervals %v", iv)
	}
}
