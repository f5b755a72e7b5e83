package e2e

// Faults of the machinery itself, for scenarios e and f: an agent killed with
// SIGKILL and restarted, and the API server restarted.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procArgs reads a process's argv and environment from /proc.
func procArgs(pid int) (args, env []string, err error) {
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, nil, err
	}
	en, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, nil, err
	}
	split := func(b []byte) []string {
		var out []string
		for _, f := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
			out = append(out, string(f))
		}
		return out
	}
	return split(cl), split(en), nil
}

// agentPid finds the agent the runtime player started for node.
func agentPid(node string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		args, _, err := procArgs(pid)
		if err != nil || len(args) < 2 || args[1] != "run" {
			continue
		}
		if !strings.HasSuffix(args[0], "edgewarden") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--node-name" && args[i+1] == node {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no agent process for node %s", node)
}

// restartPlayerAgent kills node's agent with SIGKILL and starts it again with
// the same arguments and environment. The new agent lives until the test
// binary exits (it serves the node for the later tests too).
func (e *env) restartPlayerAgent(tl *timeline, node string) {
	e.t.Helper()
	pid, err := agentPid(node)
	if err != nil {
		e.t.Fatal(err)
	}
	args, env, err := procArgs(pid)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	tl.mark("FAULT: agent of %s killed (SIGKILL, pid %d)", node, pid)
	for i := 0; i < 50; i++ {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	logPath := filepath.Join(e.dir, "runtime", "agent-"+node+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		logf, _ = os.Create(filepath.Join(e.t.TempDir(), "agent.log"))
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("restart agent: %v", err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	tl.mark("agent of %s restarted (pid %d)", node, cmd.Process.Pid)
}

// restartAPIServer stops kube-apiserver (SIGTERM) and starts it again with the
// same command line, as scripts/localcluster started it (its pid file is
// updated, so `localcluster down` stops the new one).
func (e *env) restartAPIServer(tl *timeline) {
	e.t.Helper()
	run := filepath.Join(e.dir, "run")
	b, err := os.ReadFile(filepath.Join(run, "kube-apiserver.pid"))
	if err != nil {
		e.t.Fatalf("kube-apiserver pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		e.t.Fatal(err)
	}
	args, env, err := procArgs(pid)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	tl.mark("FAULT: kube-apiserver stopped (SIGTERM, pid %d)", pid)
	for i := 0; i < 150 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(500 * time.Millisecond)
	}
	logf, err := os.OpenFile(filepath.Join(e.dir, "logs", "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("restart kube-apiserver: %v", err)
	}
	_ = os.WriteFile(filepath.Join(run, "kube-apiserver.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	go func() { _ = cmd.Wait(); logf.Close() }()
	e.waitFor("kube-apiserver ready again", 90*time.Second, func() (bool, error) {
		body, err := e.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(e.ctx)
		return err == nil && strings.TrimSpace(string(body)) == "ok", nil
	})
	tl.mark("kube-apiserver ready again (pid %d)", cmd.Process.Pid)
}

// attachedAtOn is when a VolumeAttachment for node became attached, as the
// observer saw it.
func (o *observer) attachedAtOn(node string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, at := range o.attachedAt {
		if o.vaNode[name] == node {
			return at, true
		}
	}
	return time.Time{}, false
}

// benchLine prints the figures bench/failover collects: ms from the fault to
// the replacement Ready and to the volume attached on the new node (-1: not
// within the scenario's window).
func benchLine(t *testing.T, tl *timeline, scenario string, ready, attached time.Time) {
	ms := func(at time.Time) int64 {
		if at.IsZero() {
			return -1
		}
		return at.Sub(tl.t0).Milliseconds()
	}
	t.Logf("BENCH scenario=%s ready_ms=%d attached_ms=%d", scenario, ms(ready), ms(attached))
}

// sawTaint says whether our taint had effect on node at some point since the
// observer started (transient states included: a NoExecute that lasted
// milliseconds because the pod left at once still counts).
func (o *observer) sawTaint(node, effect string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.taintSeen[node+"/"+effect]
}
