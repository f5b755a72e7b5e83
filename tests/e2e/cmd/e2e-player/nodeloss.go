package main

// Node loss, as the runtime player plays it:
//
//   - a watchdog stand-in per agent (--watchdog-dir): a FIFO the agent writes
//     to as it would to /dev/watchdog; when it fires the node "reboots";
//   - node faults driven by the Node annotation e2e.edgewarden.io/fault:
//     "off" (powered off) and "partitioned" (alive, cut off from the API);
//   - the writer ledger (<state-dir>/writers.log): when each stand-in of a
//     pod with a CSI volume started and stopped, on which node.

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"edgewarden.io/e2e/internal/harness"
)

// Node states (p.fault): "" normal, faultOff, faultPartitioned, faultFired.
const (
	faultOff         = "off"
	faultPartitioned = "partitioned"
	faultFired       = "fired" // the watchdog fired: down until the fault annotation goes (or, without one, until rebootDelay)
)

// watchdog is the stand-in for one node's /dev/watchdog: a FIFO held open
// O_RDWR by the player (so the agent's O_WRONLY|O_NONBLOCK open always finds
// a reader and the player never reads EOF). The first byte arms it, every
// byte but 'V' feeds it, 'V' disarms it (the magic close). Armed and not fed
// for timeout: it fires.
type watchdog struct {
	node    string
	path    string
	timeout time.Duration
	onFire  func(node string)
	f       *os.File

	mu       sync.Mutex
	armed    bool
	powered  bool // false while the node is down: bytes are ignored
	lastFeed time.Time
}

func newWatchdog(dir, node string, timeout time.Duration, onFire func(string)) (*watchdog, error) {
	path := filepath.Join(dir, "watchdog-"+node)
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeNamedPipe == 0 {
		_ = os.Remove(path)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("mkfifo %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	w := &watchdog{node: node, path: path, timeout: timeout, onFire: onFire, f: f, powered: true}
	go w.read()
	go w.tick()
	return w, nil
}

func (w *watchdog) read() {
	buf := make([]byte, 512)
	for {
		n, err := w.f.Read(buf)
		if n > 0 {
			w.bytes(buf[:n], time.Now())
		}
		if err != nil {
			log.Printf("watchdog %s: read: %v (no more watchdog for this node)", w.node, err)
			return
		}
	}
}

// bytes applies what the agent wrote, in order.
func (w *watchdog) bytes(b []byte, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.powered {
		return
	}
	for _, c := range b {
		switch {
		case c == 'V':
			if w.armed {
				log.Printf("watchdog %s disarmed (magic close)", w.node)
			}
			w.armed = false
		case !w.armed:
			w.armed, w.lastFeed = true, now
			log.Printf("watchdog %s armed (timeout %v)", w.node, w.timeout)
		default:
			w.lastFeed = now
		}
	}
}

// due says whether the watchdog must fire now, and disarms it if so.
func (w *watchdog) due(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.powered || !w.armed || now.Sub(w.lastFeed) < w.timeout {
		return false
	}
	w.armed = false
	return true
}

func (w *watchdog) tick() {
	for range time.Tick(50 * time.Millisecond) {
		if w.due(time.Now()) {
			w.onFire(w.node)
		}
	}
}

// power turns the node's watchdog on or off with the node: a node that is
// off has no watchdog running, and one that comes back starts disarmed.
func (w *watchdog) power(on bool) {
	w.mu.Lock()
	w.powered, w.armed = on, false
	w.mu.Unlock()
}

// ledger appends start/stop lines to <state-dir>/writers.log.
type ledger struct {
	mu sync.Mutex
	f  *os.File
}

func openLedger(stateDir string) (*ledger, error) {
	f, err := os.OpenFile(filepath.Join(stateDir, harness.LedgerFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &ledger{f: f}, nil
}

func (l *ledger) write(event string, handles []string, node, pod string) {
	if l == nil || len(handles) == 0 {
		return
	}
	now := time.Now()
	var b strings.Builder
	for _, h := range handles {
		b.WriteString(harness.LedgerEntry{At: now, Event: event, Handle: h, Node: node, Pod: pod}.String())
		b.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.WriteString(b.String()); err != nil {
		log.Printf("ledger: %v", err)
	}
}

// volumeHandles turns CSI unique volume names (kubernetes.io/csi/<driver>^<handle>)
// into handles.
func volumeHandles(vols []string) []string {
	var out []string
	for _, v := range vols {
		if _, h, ok := strings.Cut(v, "^"); ok {
			out = append(out, h)
		}
	}
	return out
}

// ours says whether the player plays the kubelet of this node: it has the
// kwok label, or had it once (a test takes the label away to stop kwok's
// heartbeats while the node is "down").
func (p *player) ours(node *corev1.Node) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if node.Labels[harness.NodeTypeLabel] == harness.NodeTypeValue {
		p.known[node.Name] = true
		return true
	}
	return p.known[node.Name]
}

// nodeFault is the node's current state ("" when normal).
func (p *player) nodeFault(node string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault[node]
}

// applyFault moves the node to the state its annotation asks for. It returns
// true when the node has just come back (the agent must be started again).
func (p *player) applyFault(node *corev1.Node) (poweredOn bool) {
	want := node.Annotations[harness.AnnFault]
	switch want {
	case "", faultOff, faultPartitioned:
	default:
		log.Printf("node %s: unknown %s=%q, treated as absent", node.Name, harness.AnnFault, want)
		want = ""
	}
	p.mu.Lock()
	cur := p.fault[node.Name]
	p.mu.Unlock()
	switch {
	case want == cur:
		return false
	case want == faultOff && cur != faultFired:
		// The state first: a stand-in's exit requeues its pod at once, and
		// the worker must find the node down, not restart it.
		p.setFault(node.Name, faultOff)
		p.powerOff(node.Name, "powered off ("+harness.AnnFault+"=off)")
	case want == faultOff: // fired, then declared off: it stays down
		p.setFault(node.Name, faultOff)
	case want == faultPartitioned && cur == "":
		log.Printf("node %s partitioned: its processes run on, the player does nothing API-driven for it", node.Name)
		p.setFault(node.Name, faultPartitioned)
	case want == faultPartitioned:
		// Down (off or fired) and now "partitioned": it stays down until the
		// annotation goes.
	case want == "":
		p.powerOn(node.Name, "fault annotation removed")
		return true
	}
	return false
}

func (p *player) setFault(node, f string) {
	p.mu.Lock()
	p.fault[node] = f
	p.mu.Unlock()
}

// fire is the watchdog's reboot: everything on the node dies at once; the node
// stays down until its fault annotation is removed (or, when it has none,
// comes back after rebootDelay, as a machine that rebooted).
func (p *player) fire(node string) {
	now := time.Now()
	log.Printf("watchdog %s fired", node)
	if p.watchdogDir != "" {
		f, err := os.OpenFile(filepath.Join(p.watchdogDir, "watchdog-"+node+".fired"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintln(f, now.UTC().Format(time.RFC3339Nano))
			f.Close()
		}
	}
	p.setFault(node, faultFired) // before the kill: see applyFault
	p.powerOff(node, "watchdog fired: rebooting")
	if ann := p.annotation(node); ann == "" {
		time.AfterFunc(p.rebootDelay, func() {
			if p.nodeFault(node) == faultFired && p.annotation(node) == "" {
				p.powerOn(node, fmt.Sprintf("rebooted (%v after the watchdog fired)", p.rebootDelay))
				p.ensureAgent(p.ctx, node)
				p.requeueNode(node)
			}
		})
	}
}

func (p *player) annotation(node string) string {
	n, err := p.nodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Annotations[harness.AnnFault]
}

// powerOff kills, with SIGKILL and all at once, the node's agent (whoever
// started it: the player or a test) and every stand-in of its pods.
func (p *player) powerOff(node, why string) {
	if w := p.watchdogOf(node); w != nil {
		w.power(false)
	}
	killed := p.killAgents(node)
	n := 0
	// Again until a sweep finds nothing: the worker may have been starting a
	// stand-in on the node while the state changed.
	for {
		p.mu.Lock()
		var procs []*proc
		for _, st := range p.state {
			if st.node == node && st.proc != nil && !st.proc.killed {
				st.proc.killed = true
				procs = append(procs, st.proc)
			}
		}
		p.mu.Unlock()
		if len(procs) == 0 {
			break
		}
		for _, pr := range procs {
			_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
			_ = syscall.Kill(pr.cmd.Process.Pid, syscall.SIGKILL)
			if pr.info.Cgroup != "" {
				killCgroup(pr.info.Cgroup)
			}
		}
		for _, pr := range procs {
			<-pr.done // the ledger's stop is written before done closes
		}
		n += len(procs)
		time.Sleep(20 * time.Millisecond)
	}
	log.Printf("node %s %s: killed agent pids %v and %d stand-in(s)", node, why, killed, n)
}

// powerOn brings the node back: no agent of an earlier life survives (a test
// may have started one through a fault proxy), the watchdog starts disarmed,
// and the caller starts the agent again.
func (p *player) powerOn(node, why string) {
	killed := p.killAgents(node)
	p.setFault(node, "")
	if w := p.watchdogOf(node); w != nil {
		w.power(true)
	}
	log.Printf("node %s back (%s): agent pids %v killed; pods resynced", node, why, killed)
}

func (p *player) watchdogOf(node string) *watchdog {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watchdogs[node]
}

// killAgents SIGKILLs every agent process of node: the one the player started
// and any a test started in its place (same binary, `run --node-name <node>`),
// and forgets the player's, so ensureAgent starts a new one.
func (p *player) killAgents(node string) []int {
	if p.agentBin == "" {
		return nil
	}
	p.mu.Lock()
	delete(p.agents, node)
	p.mu.Unlock()
	// By command line only: the pid the player remembers may have exited
	// (a test stopped it) and been reused by another process.
	pids := agentPids(p.agentBin, node)
	for _, pid := range pids {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // its own process group, when it leads one
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return pids
}

// agentPids finds the running agents of node by their command line:
// <bin> run ... --node-name <node> ..., bin with the same base name.
func agentPids(bin, node string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if len(args) < 2 || args[1] != "run" || filepath.Base(args[0]) != filepath.Base(bin) {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--node-name" && args[i+1] == node {
				out = append(out, pid)
			}
		}
	}
	return out
}

// requeueNode queues every pod the player knows on node, including those the
// API no longer has (force-deleted while the node was down).
func (p *player) requeueNode(node string) {
	p.mu.Lock()
	var keys []string
	for k, st := range p.state {
		if st.node == node {
			keys = append(keys, k)
		}
	}
	p.mu.Unlock()
	for _, k := range keys {
		p.queue.Add(k)
	}
	pods, _ := p.pods.List(everything)
	for _, pod := range pods {
		if pod.Spec.NodeName == node {
			p.queue.Add(pod.Namespace + "/" + pod.Name)
		}
	}
}
