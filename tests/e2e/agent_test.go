package e2e

// Integration tests of the agent's Kubernetes reporting against the real API
// server of the local cluster: each test makes its own Node object (not a
// kwok node, so nothing else runs there), its own SQL Server stand-in on a
// loopback port and its own agent in static mode, then reads back what the
// agent wrote — conditions, taints, Events, the heartbeat Lease — with
// client-go. The fault tests put the fault-injecting proxy
// (cmd/e2e-faultproxy) between the agent and the API server.
//
// They need the agent binary (E2E_AGENT_BIN) and the stand-in
// (EDGEWARDEN_STANDIN); tests/e2e/run passes both.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"edgewarden.io/e2e/internal/harness"
)

const agentNS = "edgewarden"

type agentProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	port    int
	logPath string
	done    chan struct{}
	err     error // the exit, once done is closed
}

type standin struct {
	cmd     *exec.Cmd
	listen  string
	control string
}

// agentBin is the binary these tests run: E2E_AGENT_TEST_BIN (tests/e2e/run
// passes the ASan+UBSan build there when it exists), else E2E_AGENT_BIN.
func agentBin(t *testing.T) string {
	b := os.Getenv("E2E_AGENT_TEST_BIN")
	if b == "" {
		b = os.Getenv("E2E_AGENT_BIN")
	}
	if b == "" {
		t.Skip("E2E_AGENT_BIN not set: these tests run the agent (tests/e2e/run sets it with EDGEWARDEN_E2E_AGENT=1)")
	}
	return b
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startStandin runs the SQL Server stand-in on a free loopback port.
func (e *env) startStandin() *standin {
	e.t.Helper()
	bin := os.Getenv("EDGEWARDEN_STANDIN")
	if bin == "" || bin == "none" || os.Getenv("E2E_STANDIN_OK") != "1" {
		e.t.Skipf("the SQL Server stand-in is not available (%s)", os.Getenv("E2E_STANDIN_STATUS"))
	}
	dir := e.t.TempDir()
	s := &standin{control: filepath.Join(dir, "ctl")}
	s.cmd = exec.Command(bin, "--listen", "127.0.0.1:0", "--control", s.control, "--foreground")
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	s.cmd.Stderr = os.Stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ready ") {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "listen="); ok {
					s.listen = v
				}
			}
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if s.listen == "" {
		e.t.Fatal("stand-in printed no ready line")
	}
	return s
}

func (s *standin) do(t *testing.T, cmd string) {
	t.Helper()
	reply, err := control(s.control, cmd)
	if err != nil || !strings.HasPrefix(reply, "ok") {
		t.Fatalf("stand-in %q: %q %v", cmd, reply, err)
	}
}

// makeNode creates a Node object the test owns; removed at the end.
func (e *env) makeNode(prefix string) string {
	e.t.Helper()
	name := fmt.Sprintf("%s-%06d", prefix, rand.Intn(1000000))
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e.edgewarden.io/agent-test": "true"}}}
	if _, err := e.client.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		_ = e.client.CoreV1().Nodes().Delete(e.ctx, name, metav1.DeleteOptions{})
		_ = e.client.CoordinationV1().Leases(agentNS).Delete(e.ctx, "edgewarden-"+name, metav1.DeleteOptions{})
	})
	return name
}

// agentKubeconfig is the agent's own identity (k8s/base RBAC), written by
// scripts/localcluster; the admin one when it is absent.
func (e *env) agentKubeconfig() string {
	p := filepath.Join(e.dir, "agent.kubeconfig")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return os.Getenv("E2E_KUBECONFIG")
}

type agentCfg struct {
	node, target, kubeconfig  string
	relocateAfter, quarantine string
	extra                     string
}

func (c agentCfg) yaml() string {
	return fmt.Sprintf(`apiVersion: edgewarden.io/v1alpha1
kind: AgentConfig
nodeName: %s
log: {level: debug, format: json}
health: {startupGrace: 2s}
targets:
  - name: sql
    address: %s
    port: %s
    probes:
      - {kind: tds, interval: 200ms, timeout: 150ms, jitter: 20ms, rise: 1, fall: 1}
policy:
  relocateAfter: %s
  restartAllowance: 5s
  quarantine: %s
  eventDedupWindow: 1s
remediation:
  # The remediator stops acting before its heartbeat Lease runs out.
  election: {renewDeadline: 8s}
kubernetes:
  enabled: true
  kubeconfig: %s
  namespace: %s
  requestTimeout: 5s
  lease: {duration: 10s, renewInterval: 2s}
%s`, c.node, strings.Split(c.target, ":")[0], strings.Split(c.target, ":")[1], c.relocateAfter, c.quarantine,
		c.kubeconfig, agentNS, c.extra)
}

func (e *env) startAgent(c agentCfg) *agentProc {
	e.t.Helper()
	bin := agentBin(e.t)
	dir := e.t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(c.yaml()), 0o644); err != nil {
		e.t.Fatal(err)
	}
	a := &agentProc{t: e.t, port: freePort(e.t), logPath: filepath.Join(dir, "agent.log"), done: make(chan struct{})}
	logf, err := os.Create(a.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	a.cmd = exec.Command(bin, "run", "--config", cfgPath, "--listen", fmt.Sprintf("127.0.0.1:%d", a.port))
	a.cmd.Env = append(os.Environ(), "NODE_NAME=")
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { a.err = a.cmd.Wait(); logf.Close(); close(a.done) }()
	e.t.Cleanup(func() {
		a.stop()
		if e.t.Failed() {
			b, _ := os.ReadFile(a.logPath)
			e.t.Logf("agent log (%s):\n%s", a.logPath, tail(string(b), 100))
		}
	})
	return a
}

// tail is the last n lines of an agent log, debug lines left out.
func tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if !strings.Contains(l, `"level":"debug"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (a *agentProc) running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and expects a clean exit within 5 s.
func (a *agentProc) stop() {
	if !a.running() {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		// A sanitizer build reports leaks and errors through its exit code.
		if a.err != nil {
			a.t.Errorf("agent exit after SIGTERM: %v (see %s)", a.err, a.logPath)
		}
	case <-time.After(5 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		a.t.Errorf("agent did not stop within 5 s of SIGTERM")
	}
}

func (a *agentProc) kill() {
	_ = a.cmd.Process.Kill()
	<-a.done
}

func (a *agentProc) get(path string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", a.port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric sums the samples of a metric whose labels contain every filter.
func (a *agentProc) metric(name string, filters ...string) float64 {
	_, body := a.get("/metrics")
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, f := range filters {
			ok = ok && strings.Contains(l, f)
		}
		if !ok {
			continue
		}
		var v float64
		fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
		sum += v
	}
	return sum
}

func ourTaint(n *corev1.Node) string {
	for _, t := range n.Spec.Taints {
		if t.Key == harness.Taint {
			return string(t.Effect)
		}
	}
	return ""
}

func (e *env) node(name string) *corev1.Node {
	n, err := e.client.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

func (e *env) waitNode(what, name string, timeout time.Duration, cond func(n *corev1.Node) bool) *corev1.Node {
	e.t.Helper()
	var last *corev1.Node
	e.waitFor(what+" on "+name, timeout, func() (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = n
		return cond(n), nil
	})
	return last
}

func condIs(typ corev1.NodeConditionType, st corev1.ConditionStatus) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool { return nodeCond(n, typ) == st }
}

func taintIs(effect string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool { return ourTaint(n) == effect }
}

// events of the agent about an object, by reason.
func (e *env) agentEvents(namespace, name string) map[string]int {
	out := map[string]int{}
	el, err := e.client.EventsV1().Events(namespace).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list events: %v", err)
	}
	for _, ev := range el.Items {
		if ev.ReportingController == "edgewarden.io/agent" && ev.Regarding.Name == name {
			out[ev.Reason]++
		}
	}
	return out
}

// The whole ladder in static mode: condition at once, Warning Event, taint
// NoExecute after relocateAfter, NoSchedule quarantine on recovery, lifted
// after it; the heartbeat Lease renewed; the metrics account for it.
func TestAgentStaticLadder(t *testing.T) {
	e := newEnv(t)
	node := e.makeNode("ew-ladder")
	s := e.startStandin()
	a := e.startAgent(agentCfg{node: node, target: s.listen, kubeconfig: e.agentKubeconfig(), relocateAfter: "2s", quarantine: "4s"})

	e.waitNode("condition SQLEdgeUnhealthy=False (healthy)", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))
	// The Lease is created by the first heartbeat, which may come a few
	// milliseconds after the condition.
	var lease *coordinationv1.Lease
	e.waitFor("the heartbeat Lease", 10*time.Second, func() (bool, error) {
		l, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, "edgewarden-"+node, metav1.GetOptions{})
		lease = l
		return err == nil, nil
	})
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != node {
		t.Errorf("Lease holderIdentity = %v, want %s", lease.Spec.HolderIdentity, node)
	}
	if code, body := a.get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q with a reachable API", code, body)
	}

	s.do(t, "mode hang")
	t0 := time.Now()
	n := e.waitNode("condition SQLEdgeUnhealthy=True", node, 10*time.Second, condIs(harness.NodeCondition, corev1.ConditionTrue))
	tCond := time.Since(t0)
	for _, c := range n.Status.Conditions {
		if string(c.Type) == harness.NodeCondition && (c.Reason == "" || c.Message == "") {
			t.Errorf("condition without reason or message: %+v", c)
		}
	}
	n = e.waitNode("taint NoExecute", node, 15*time.Second, taintIs("NoExecute"))
	tTaint := time.Since(t0)
	if tTaint < 2*time.Second {
		t.Errorf("NoExecute %v after the fault, before relocateAfter (2s)", tTaint)
	}
	t.Logf("hang injected: condition True after %v, NoExecute after %v (relocateAfter 2s)", tCond.Round(time.Millisecond), tTaint.Round(time.Millisecond))

	s.do(t, "mode ok")
	e.waitNode("quarantine NoSchedule", node, 15*time.Second, taintIs("NoSchedule"))
	e.waitNode("condition SQLEdgeUnhealthy=False", node, 10*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))
	e.waitNode("taint removed after the quarantine", node, 20*time.Second, taintIs(""))

	e.waitFor("the Events", 10*time.Second, func() (bool, error) {
		ev := e.agentEvents("default", node)
		return ev["FailingOver"] > 0 && ev["Recovered"] > 0 && ev["QuarantineLifted"] > 0, nil
	})
	t.Logf("events: %v", e.agentEvents("default", node))

	lease2, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, "edgewarden-"+node, metav1.GetOptions{})
	if err != nil || lease2.Spec.RenewTime == nil || !lease2.Spec.RenewTime.After(lease.Spec.RenewTime.Time) {
		t.Errorf("Lease not renewed: %v then %v (%v)", lease.Spec.RenewTime, lease2.Spec.RenewTime, err)
	}
	for _, m := range []string{"edgewarden_kube_requests_total", "edgewarden_detection_to_action_seconds_count"} {
		if a.metric(m) == 0 {
			t.Errorf("metric %s is 0", m)
		}
	}
	// docs/metrics.md's Kubernetes table is what this agent serves.
	md, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, kubeTable, _ := strings.Cut(string(md), "## Kubernetes reporting metrics")
	_, body := a.get("/metrics")
	for _, l := range strings.Split(kubeTable, "\n") {
		if name, ok := strings.CutPrefix(l, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			if !strings.Contains(body, "# HELP "+name+" ") {
				t.Errorf("docs/metrics.md lists %s; /metrics does not serve it", name)
			}
		}
	}
	for _, l := range strings.Split(body, "\n") {
		if name, ok := strings.CutPrefix(l, "# HELP edgewarden_kube_"); ok {
			name, _, _ = strings.Cut(name, " ")
			if !strings.Contains(kubeTable, "`edgewarden_kube_"+name+"`") {
				t.Errorf("/metrics serves edgewarden_kube_%s; docs/metrics.md does not list it", name)
			}
		}
	}
	if v := a.metric("edgewarden_kube_requests_total", `code="403"`); v > 0 {
		t.Errorf("%v requests refused (403): the RBAC in k8s/base lacks a rule", v)
	}
	if !a.running() {
		t.Fatal("agent exited")
	}
}

// Another writer adds taints to the same node while the agent flips its own:
// no foreign taint is lost, ours appears exactly once.
func TestAgentKeepsForeignTaints(t *testing.T) {
	e := newEnv(t)
	node := e.makeNode("ew-taints")
	s := e.startStandin()
	e.startAgent(agentCfg{node: node, target: s.listen, kubeconfig: e.agentKubeconfig(), relocateAfter: "0s", quarantine: "1h"})
	e.waitNode("condition SQLEdgeUnhealthy=False", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))

	const foreign = 20
	done := make(chan error, 1)
	go func() {
		for i := 0; i < foreign; i++ {
			err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
				n, err := e.client.CoreV1().Nodes().Get(e.ctx, node, metav1.GetOptions{})
				if err != nil {
					return err
				}
				n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: fmt.Sprintf("it.example.com/t%d", i), Value: "x", Effect: corev1.TaintEffectPreferNoSchedule})
				_, err = e.client.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				done <- err
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
		done <- nil
	}()
	for i := 0; i < 4; i++ {
		s.do(t, "mode hang")
		e.waitNode("taint NoExecute", node, 10*time.Second, taintIs("NoExecute"))
		s.do(t, "mode ok")
		e.waitNode("taint NoSchedule", node, 10*time.Second, taintIs("NoSchedule"))
	}
	if err := <-done; err != nil {
		t.Fatalf("the other writer: %v", err)
	}
	n := e.node(node)
	seen, ours := map[string]bool{}, 0
	for _, tt := range n.Spec.Taints {
		seen[tt.Key] = true
		if tt.Key == harness.Taint {
			ours++
		}
	}
	for i := 0; i < foreign; i++ {
		if !seen[fmt.Sprintf("it.example.com/t%d", i)] {
			t.Errorf("foreign taint t%d lost; taints now %v", i, n.Spec.Taints)
		}
	}
	if ours != 1 {
		t.Errorf("our taint appears %d times: %v", ours, n.Spec.Taints)
	}
}

// An agent killed with SIGKILL while the node is tainted and restarted:
// nothing flaps (the taint never leaves, the condition never turns False
// while the engine is still hung), and it converges after recovery.
func TestAgentRestartDoesNotFlap(t *testing.T) {
	e := newEnv(t)
	node := e.makeNode("ew-restart")
	s := e.startStandin()
	cfg := agentCfg{node: node, target: s.listen, kubeconfig: e.agentKubeconfig(), relocateAfter: "0s", quarantine: "3s"}
	a := e.startAgent(cfg)
	e.waitNode("condition False", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))
	s.do(t, "mode hang")
	e.waitNode("taint NoExecute", node, 10*time.Second, taintIs("NoExecute"))
	a.kill()

	// Watch every change of the node while a new agent starts.
	w, err := e.client.CoreV1().Nodes().Watch(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + node})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	flaps := make(chan string, 100)
	go func() {
		for ev := range w.ResultChan() {
			n, ok := ev.Object.(*corev1.Node)
			if !ok {
				continue
			}
			if ourTaint(n) != "NoExecute" {
				flaps <- "taint " + ourTaint(n)
			}
			if nodeCond(n, harness.NodeCondition) != corev1.ConditionTrue {
				flaps <- "condition " + string(nodeCond(n, harness.NodeCondition))
			}
		}
	}()
	a2 := e.startAgent(cfg)
	deadline := time.After(6 * time.Second) // startup grace 2 s, then the hung verdict again
	for wait := true; wait; {
		select {
		case f := <-flaps:
			t.Fatalf("restart flapped the node: %s", f)
		case <-deadline:
			wait = false
		}
	}
	if _, body := a2.get("/status"); !strings.Contains(body, `"reconciled": true`) {
		t.Errorf("agent not reconciled after restart: %s", body)
	}
	w.Stop()
	s.do(t, "mode ok")
	e.waitNode("quarantine NoSchedule", node, 10*time.Second, taintIs("NoSchedule"))
	e.waitNode("taint removed", node, 15*time.Second, taintIs(""))
}

// ---- through the fault-injecting proxy ----------------------------------

type faultProxy struct {
	cmd        *exec.Cmd
	url        string
	control    string
	kubeconfig string
	dir        string
}

func (e *env) startProxy() *faultProxy {
	e.t.Helper()
	bin := filepath.Join(repoRoot(), "tests", "e2e", ".bin", "harness", "e2e-faultproxy")
	if _, err := os.Stat(bin); err != nil {
		e.t.Fatalf("fault proxy not built (%s): run scripts/e2e-build", bin)
	}
	p := &faultProxy{dir: e.t.TempDir()}
	p.cmd = exec.Command(bin, "--upstream-kubeconfig", e.agentKubeconfig(), "--listen", "127.0.0.1:0",
		"--control", "127.0.0.1:0", "--out-dir", p.dir, "--parent-pid", fmt.Sprint(os.Getpid()))
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGTERM); _ = p.cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ready ") {
			for _, f := range strings.Fields(sc.Text()) {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "proxy":
					p.url = v
				case "control":
					p.control = v
				case "kubeconfig":
					p.kubeconfig = v
				}
			}
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if p.control == "" || p.kubeconfig == "" {
		e.t.Fatal("fault proxy printed no ready line")
	}
	return p
}

func (p *faultProxy) post(t *testing.T, path string, body any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	resp, err := http.Post(p.control+path, "application/json", rd)
	if err != nil {
		t.Fatalf("proxy control %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("proxy control %s: %d %s", path, resp.StatusCode, b)
	}
}

func (p *faultProxy) faults(t *testing.T, rules ...map[string]any) {
	t.Helper()
	p.post(t, "/faults", rules)
}

func (p *faultProxy) clear(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, p.control+"/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

type proxyRequests struct {
	Counts   map[string]int `json:"counts"`
	Requests []struct {
		Time     time.Time `json:"time"`
		Method   string    `json:"method"`
		Path     string    `json:"path"`
		Query    string    `json:"query"`
		Status   int       `json:"status"`
		InFlight bool      `json:"inFlight"`
	} `json:"requests"`
}

func (p *faultProxy) requests(t *testing.T) proxyRequests {
	t.Helper()
	resp, err := http.Get(p.control + "/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r proxyRequests
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("proxy /requests: %v", err)
	}
	return r
}

// API faults of every kind while the engine fails and recovers: the agent
// keeps probing, reports the API as unreachable on /readyz while it is, and
// converges to the right state once the API answers again.
func TestAgentSurvivesAPIFaults(t *testing.T) {
	e := newEnv(t)
	node := e.makeNode("ew-faults")
	s := e.startStandin()
	p := e.startProxy()
	a := e.startAgent(agentCfg{node: node, target: s.listen, kubeconfig: p.kubeconfig, relocateAfter: "1s", quarantine: "8s"})
	e.waitNode("condition False through the proxy", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))

	checks := func() float64 { return a.metric("edgewarden_probe_results_total") }

	// 1. Every request fails with 503 while the engine hangs: probing goes
	// on, /readyz says the API is not usable; then it converges.
	p.faults(t, map[string]any{"match": map[string]any{}, "action": "status", "status": 503})
	before := checks()
	s.do(t, "mode hang")
	e.waitFor("/readyz 503 while the API fails", 20*time.Second, func() (bool, error) {
		code, _ := a.get("/readyz")
		return code == 503, nil
	})
	time.Sleep(time.Second)
	if checks() <= before {
		t.Errorf("probing stopped while the API failed")
	}
	p.clear(t)
	e.waitNode("NoExecute after the 503s", node, 45*time.Second, taintIs("NoExecute"))
	e.waitNode("condition True after the 503s", node, 45*time.Second, condIs(harness.NodeCondition, corev1.ConditionTrue))
	e.waitFor("/readyz 200 again", 20*time.Second, func() (bool, error) {
		code, _ := a.get("/readyz")
		return code == 200, nil
	})

	// 2. 429 with Retry-After on the node status patch, resets on the taint
	// patch: the writes still land.
	p.faults(t,
		map[string]any{"match": map[string]any{"method": "PATCH", "pathPrefix": "/api/v1/nodes/" + node + "/status"}, "action": "retry-after", "status": 429, "retryAfterSeconds": 1, "count": 2},
		map[string]any{"match": map[string]any{"method": "PATCH", "pathPrefix": "/api/v1/nodes/" + node}, "action": "reset", "count": 2},
	)
	s.do(t, "mode ok")
	e.waitNode("condition False after 429s", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))
	e.waitNode("NoSchedule after resets", node, 30*time.Second, taintIs("NoSchedule"))
	e.waitFor("the node status patch to succeed after two 429s", 30*time.Second, func() (bool, error) {
		n429, ok := 0, false
		for _, r := range p.requests(t).Requests {
			if r.Method == "PATCH" && strings.HasSuffix(r.Path, "/nodes/"+node+"/status") {
				if r.Status == 429 {
					n429++
				} else if n429 == 2 && r.Status == 200 {
					ok = true
				}
			}
		}
		return ok, nil
	})
	p.clear(t)
	if v := a.metric("edgewarden_kube_request_retries_total", `resource="nodes/status"`); v < 2 {
		t.Errorf("the two 429s were not retried (%v retries counted)", v)
	}
	// Retry-After: 1 was honoured: the proxy saw the retries at least ~1 s apart.
	var patches []int
	reqs := p.requests(t).Requests
	for i, r := range reqs {
		if r.Method == "PATCH" && strings.HasSuffix(r.Path, "/nodes/"+node+"/status") {
			patches = append(patches, i)
		}
	}
	n429 := 0
	for k, i := range patches {
		if reqs[i].Status != 429 {
			continue
		}
		n429++
		if k+1 == len(patches) {
			t.Errorf("no retry after the 429 at %v", reqs[i].Time)
			continue
		}
		if gap := reqs[patches[k+1]].Time.Sub(reqs[i].Time); gap < 900*time.Millisecond {
			t.Errorf("the retry came %v after a 429 with Retry-After: 1", gap)
		}
	}
	if n429 != 2 {
		t.Errorf("the proxy answered %d PATCHes of the node status with 429, want 2", n429)
	}
	if t.Failed() {
		for _, i := range patches {
			t.Logf("proxy saw: %v %s %s -> %d", reqs[i].Time.Format("15:04:05.000"), reqs[i].Method, reqs[i].Path, reqs[i].Status)
		}
	}

	// 3. The watch is told its resourceVersion is gone (410): the agent
	// lists again; a dropped watch is resumed.
	listsBefore := p.requests(t).Counts["LIST nodes"] + p.requests(t).Counts["GET nodes"]
	p.faults(t, map[string]any{"match": map[string]any{"method": "GET", "watch": true}, "action": "watch-gone", "count": 1})
	p.post(t, "/drop-watches", nil)
	e.waitFor("a relist after 410", 30*time.Second, func() (bool, error) {
		r := p.requests(t)
		return r.Counts["LIST nodes"]+r.Counts["GET nodes"] > listsBefore, nil
	})
	p.clear(t)
	if a.metric("edgewarden_kube_watch_restarts_total") < 1 {
		t.Errorf("no watch restart counted")
	}

	// 4. Slow API: every answer 1.5 s late; the ladder still completes.
	p.faults(t, map[string]any{"match": map[string]any{}, "action": "delay", "delayMs": 1500})
	s.do(t, "mode hang")
	e.waitNode("NoExecute with a slow API", node, 45*time.Second, taintIs("NoExecute"))
	p.clear(t)
	s.do(t, "mode ok")
	e.waitNode("NoSchedule", node, 30*time.Second, taintIs("NoSchedule"))
	e.waitNode("taint lifted", node, 30*time.Second, taintIs(""))

	if !a.running() {
		t.Fatal("the agent exited during the API faults")
	}
	if code, _ := a.get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d after the faults", code)
	}
}

// A rotated token: the proxy stops accepting the old one (401, as for an
// expired service-account token); the agent re-reads its token file and
// carries on.
func TestAgentRereadsTokenAfter401(t *testing.T) {
	e := newEnv(t)
	node := e.makeNode("ew-token")
	s := e.startStandin()
	p := e.startProxy()
	// A kubeconfig that reads the token from a file, as in-cluster agents do.
	kc, err := os.ReadFile(p.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	var tok string
	for _, l := range strings.Split(string(kc), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "token: "); ok {
			tok = strings.Trim(v, `"`)
		}
	}
	if tok == "" {
		t.Fatalf("no token in the proxy's kubeconfig:\n%s", kc)
	}
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kc2 := strings.Replace(string(kc), "token: "+tok, "tokenFile: "+tokenFile, 1)
	kc2 = strings.Replace(kc2, `token: "`+tok+`"`, "tokenFile: "+tokenFile, 1)
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kcPath, []byte(kc2), 0o600); err != nil {
		t.Fatal(err)
	}
	a := e.startAgent(agentCfg{node: node, target: s.listen, kubeconfig: kcPath, relocateAfter: "1s", quarantine: "2s"})
	e.waitNode("condition False", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))

	p.post(t, "/token", map[string]string{"token": "rotated-" + tok})
	s.do(t, "mode hang")
	e.waitFor("a 401", 20*time.Second, func() (bool, error) {
		return a.metric("edgewarden_kube_requests_total", `code="401"`) > 0, nil
	})
	if err := os.WriteFile(tokenFile, []byte("rotated-"+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.waitNode("NoExecute with the rotated token", node, 60*time.Second, taintIs("NoExecute"))
	s.do(t, "mode ok")
	e.waitNode("NoSchedule", node, 30*time.Second, taintIs("NoSchedule"))
	if !a.running() {
		t.Fatal("agent exited")
	}
}

// The agent stops (SIGTERM) while requests of its cluster part wait for an
// API server that does not answer — the release of a failover slot after a
// recovery, and the election — and exits within 5 s with nothing leaked
// (stop() fails on a non-zero exit, which is how a sanitizer build and the
// valgrind wrapper report a leak).
// CI once found such a leak by chance, on a slot release in flight.
func TestAgentStopsWithRequestsInFlight(t *testing.T) {
	e := newEnv(t)
	node := e.makeNode("ew-stop")
	s := e.startStandin()
	p := e.startProxy()
	a := e.startAgent(agentCfg{node: node, target: s.listen, kubeconfig: p.kubeconfig, relocateAfter: "1s", quarantine: "30s"})
	e.waitNode("condition False through the proxy", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))

	s.do(t, "mode hang")
	e.waitNode("NoExecute (a failover slot taken)", node, 30*time.Second, taintIs("NoExecute"))
	leases := "/apis/coordination.k8s.io/v1/namespaces/" + agentNS + "/leases/"
	p.faults(t,
		map[string]any{"match": map[string]any{"pathPrefix": leases + "edgewarden-failover-"}, "action": "blackhole"},
		map[string]any{"match": map[string]any{"pathPrefix": leases + "edgewarden-remediator"}, "action": "blackhole"})
	s.do(t, "mode ok")
	e.waitFor("the slot's release and an election request held by the proxy", 30*time.Second, func() (bool, error) {
		var release, election bool
		for _, r := range p.requests(t).Requests {
			release = release || (r.InFlight && r.Method == "PUT" && strings.HasPrefix(r.Path, leases+"edgewarden-failover-"))
			election = election || (r.InFlight && strings.HasPrefix(r.Path, leases+"edgewarden-remediator"))
		}
		return release && election, nil
	})
	a.stop() // within 5 s, exit status 0
}

// A bad kubeconfig is a configuration that can never work: exit 2 at start
// with the field named.
func TestAgentBadKubeconfigExits2(t *testing.T) {
	bin := agentBin(t)
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	_ = os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\ncurrent-context: nope\n"), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	_ = os.WriteFile(cfg, []byte("apiVersion: edgewarden.io/v1alpha1\nkind: AgentConfig\nkubernetes: {enabled: true, kubeconfig: "+kc+"}\n"), 0o644)
	cmd := exec.Command(bin, "run", "--config", cfg, "--listen", "")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2; output:\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("nope")) {
		t.Errorf("the error does not name the missing context:\n%s", out)
	}
}

// A taint and an unhealthy condition left on a node with no SQL pod (the
// agent restarted during a quarantine, after its pod had moved): the agent,
// in pod mode with no pod of its own, adopts them and winds them down —
// NoExecute becomes the NoSchedule quarantine, which is then lifted.
func TestAgentWindsDownOrphanedTaint(t *testing.T) {
	e := newEnv(t)
	node := e.makeNode("ew-orphan")
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		n, err := e.client.CoreV1().Nodes().Get(e.ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: harness.Taint, Effect: corev1.TaintEffectNoExecute})
		_, err = e.client.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := e.startStandin()
	e.startAgent(agentCfg{node: node, target: s.listen, kubeconfig: e.agentKubeconfig(), relocateAfter: "1s", quarantine: "3s",
		extra: fmt.Sprintf("  pods: {selector: app=nothing-%06d}\n", rand.Intn(1000000))})
	e.waitNode("the orphaned NoExecute turned into the quarantine", node, 30*time.Second, taintIs("NoSchedule"))
	e.waitNode("the quarantine lifted", node, 30*time.Second, taintIs(""))
}
