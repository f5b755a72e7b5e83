// Command e2e-player is the e2e harness's "runtime player": it gives the kwok
// fake nodes the parts of a kubelet that matter to edgewarden.
//
// For every pod bound to a kwok node (label type=kwok) it:
//
//   - waits until each CSI volume of the pod is listed in the node's
//     status.volumesAttached (written by the attach-detach controller once the
//     VolumeAttachment is attached), adds the volumes to the node's
//     status.volumesInUse, as the kubelet's volume manager does before
//     mounting, and only then annotates the pod e2e.edgewarden.io/volumes-ready
//     so the kwok stage e2e-pod-running may make it Running;
//   - for a Running SQL pod (label app=sqledge) starts the SQL Server stand-in
//     (--standin, built by the C project as build/tests/fixtures/sqlservr) on
//     the pod's IP (kwok allocates it from the node's podCIDR, 127.1.<n>.0/24),
//     in a cgroup whose path carries the pod UID as the kubelet's cgroupfs
//     driver does (<cgroup2>/edgewarden-e2e/<node>/kubepods/pod<uid>/<container>),
//     and restarts it with the kubelet's crash-loop back-off when it exits;
//   - recomputes the pod's Ready condition with the kubelet's rule
//     (ContainersReady and every readiness-gate condition True), because kwok
//     does not and edgewarden owns the gate edgewarden.io/sqledge-ready;
//   - when the pod is being deleted, stops the stand-in (SIGTERM, then SIGKILL
//     after the grace period), removes its volumes from volumesInUse and
//     annotates it e2e.edgewarden.io/stopped so the kwok stage e2e-pod-delete
//     removes it, as the kubelet confirms a deletion only after the containers
//     are gone.
//
// With --agent-bin it also starts one edgewarden agent per kwok node
// (NODE_NAME=<node>, KUBECONFIG, `edgewarden run --config <file>`); the
// agents' KUBECONFIG is --agent-kubeconfig when given (scripts/localcluster
// passes the edgewarden ServiceAccount's, so they run with k8s/base's RBAC),
// else the player's own --kubeconfig.
//
// State for the tests lives under --state-dir: pods/<uid>.json describes the
// stand-in of a pod (control socket, pids, cgroup); writers.log is the writer
// ledger (one line per stand-in start and stop of a pod with a CSI volume,
// see internal/harness/ledger.go).
//
// Node loss (nodeloss.go): with --watchdog-dir each agent gets a watchdog
// stand-in, a FIFO DIR/watchdog-<node> named by EDGEWARDEN_WATCHDOG_DEVICE in
// its environment; when it fires the node reboots (agent and stand-ins
// SIGKILLed, the node down). The Node annotation e2e.edgewarden.io/fault
// powers a node off ("off") or cuts it off from the API ("partitioned"); a
// node stays the player's while a test has taken its type=kwok label away.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"edgewarden.io/e2e/internal/harness"
)

// PodRuntime is what the player writes to <state-dir>/pods/<uid>.json.
type PodRuntime struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Node      string `json:"node"`
	PodIP     string `json:"podIP"`
	Listen    string `json:"listen"`
	Control   string `json:"control"`
	PID       int    `json:"pid"`
	ParentPID int    `json:"parentPid,omitempty"`
	EnginePID int    `json:"enginePid,omitempty"`
	Cgroup    string `json:"cgroup,omitempty"`
	Stdout    string `json:"stdout"`
	Restarts  int    `json:"restarts"`
	Started   string `json:"started"`
}

type proc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool // stopped by us
	killed  bool // killed by a power-off or a watchdog fire (under player.mu)
	info    PodRuntime
	handles []string // CSI volume handles, for the writer ledger
}

type podState struct {
	uid       types.UID
	node      string
	volumes   []string // CSI unique volume names
	inUse     bool
	proc      *proc
	restarts  int
	nextStart time.Time
}

type player struct {
	client    kubernetes.Interface
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	pvcs      corelisters.PersistentVolumeClaimLister
	pvs       corelisters.PersistentVolumeLister
	queue     workqueue.TypedRateLimitingInterface[string]
	standin   string
	stateDir  string
	cgRoot    string // cgroup v2 mount, "" when not usable
	backoff   time.Duration
	mu        sync.Mutex
	state     map[string]*podState // by ns/name
	agentBin  string
	agentConf string
	kubecfg   string // the agents' KUBECONFIG
	agents    map[string]*exec.Cmd
	agentPort int
	ports     map[string]int // node -> the agent's HTTP port, kept across restarts

	ctx         context.Context
	known       map[string]bool   // nodes that had the kwok label: ours even while a test takes it away
	fault       map[string]string // node -> "", off, partitioned, fired
	watchdogDir string
	watchdogTO  time.Duration
	rebootDelay time.Duration
	watchdogs   map[string]*watchdog
	ledger      *ledger
}

var everything = labels.Everything()

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path (default $KUBECONFIG)")
	standin := flag.String("standin", "", "path of the SQL Server stand-in (sqlservr); empty: run no processes")
	stateDir := flag.String("state-dir", "", "directory for runtime state (required)")
	cgroup := flag.String("cgroup-root", "auto", "cgroup v2 mount to create pod cgroups under; auto: find it; none: do not use cgroups")
	backoff := flag.Duration("restart-backoff", 10*time.Second, "initial crash-loop back-off (the kubelet's is 10s, doubling to 5m)")
	agentBin := flag.String("agent-bin", "", "edgewarden binary: start one agent per kwok node (hook; empty: no agents)")
	agentConf := flag.String("agent-config", "", "config file for the agents")
	agentKubeconfig := flag.String("agent-kubeconfig", "", "the agents' KUBECONFIG (default: --kubeconfig)")
	agentPort := flag.Int("agent-port-base", 19100, "the agents' HTTP ports: base, base+1, ... (127.0.0.1)")
	watchdogDir := flag.String("watchdog-dir", "", "give each agent a watchdog stand-in: a FIFO DIR/watchdog-<node> (EDGEWARDEN_WATCHDOG_DEVICE); empty: none")
	watchdogTO := flag.Duration("watchdog-timeout", 10*time.Second, "the watchdog stand-ins' timeout")
	rebootDelay := flag.Duration("reboot-delay", 15*time.Second, "a node whose watchdog fired without a fault annotation comes back after this")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("e2e-player ")
	if *stateDir == "" {
		log.Fatal("--state-dir is required")
	}
	if err := os.MkdirAll(filepath.Join(*stateDir, "pods"), 0o755); err != nil {
		log.Fatal(err)
	}
	if *watchdogDir != "" {
		if err := os.MkdirAll(*watchdogDir, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	led, err := openLedger(*stateDir)
	if err != nil {
		log.Fatal(err)
	}
	if *standin != "" {
		if st, err := os.Stat(*standin); err != nil || st.Mode()&0o111 == 0 {
			log.Printf("WARNING: stand-in %q is not an executable file; SQL pods will run no process", *standin)
			*standin = ""
		}
	}
	client, err := harness.Client(*kubeconfig, "e2e-player")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	f := informers.NewSharedInformerFactory(client, 30*time.Second)
	p := &player{
		client:    client,
		pods:      f.Core().V1().Pods().Lister(),
		nodes:     f.Core().V1().Nodes().Lister(),
		pvcs:      f.Core().V1().PersistentVolumeClaims().Lister(),
		pvs:       f.Core().V1().PersistentVolumes().Lister(),
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		standin:   *standin,
		stateDir:  *stateDir,
		backoff:   *backoff,
		state:     map[string]*podState{},
		agentBin:  *agentBin,
		agentConf: *agentConf,
		kubecfg:   cmp.Or(*agentKubeconfig, *kubeconfig),
		agents:    map[string]*exec.Cmd{},
		agentPort: *agentPort,
		ports:     map[string]int{},

		ctx:         ctx,
		known:       map[string]bool{},
		fault:       map[string]string{},
		watchdogDir: *watchdogDir,
		watchdogTO:  *watchdogTO,
		rebootDelay: *rebootDelay,
		watchdogs:   map[string]*watchdog{},
		ledger:      led,
	}
	p.cgRoot = findCgroupRoot(*cgroup)
	if p.cgRoot == "" {
		log.Printf("cgroups: not used (no writable cgroup v2 mount); stand-ins run in the player's cgroup")
	} else {
		log.Printf("cgroups: pod cgroups under %s/edgewarden-e2e", p.cgRoot)
	}

	podKey := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if pod, ok := obj.(*corev1.Pod); ok {
			p.queue.Add(pod.Namespace + "/" + pod.Name)
		}
	}
	if _, err := f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: podKey, UpdateFunc: func(_, n any) { podKey(n) }, DeleteFunc: podKey,
	}); err != nil {
		log.Fatal(err)
	}
	nodeChanged := func(obj any) {
		node, ok := obj.(*corev1.Node)
		if !ok || !p.ours(node) {
			return
		}
		p.applyFault(node)
		if p.nodeFault(node.Name) == "" {
			p.ensureAgent(ctx, node.Name)
		}
		p.requeueNode(node.Name)
	}
	if _, err := f.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: nodeChanged, UpdateFunc: func(_, n any) { nodeChanged(n) },
	}); err != nil {
		log.Fatal(err)
	}
	f.Core().V1().PersistentVolumeClaims().Informer()
	f.Core().V1().PersistentVolumes().Informer()
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			log.Fatalf("cache sync failed for %v", typ)
		}
	}
	log.Printf("running (stand-in %q, state %s, watchdogs %q timeout %v)", p.standin, p.stateDir, p.watchdogDir, p.watchdogTO)
	go wait.UntilWithContext(ctx, p.worker, time.Second)
	<-ctx.Done()
	p.queue.ShutDown()
	p.shutdown()
	log.Print("stopped")
}

func findCgroupRoot(flagValue string) string {
	switch flagValue {
	case "none":
		return ""
	case "auto":
	default:
		return flagValue
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		// ... mountpoint ... - cgroup2 ...
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" || len(fields) < 5 {
			continue
		}
		mp := fields[4]
		probe := filepath.Join(mp, "edgewarden-e2e")
		if err := os.MkdirAll(probe, 0o755); err == nil {
			return mp
		}
	}
	return ""
}

func (p *player) worker(ctx context.Context) {
	for {
		key, quit := p.queue.Get()
		if quit {
			return
		}
		if err := p.sync(ctx, key); err != nil {
			log.Printf("%s: %v (retrying)", key, err)
			p.queue.AddRateLimited(key)
		} else {
			p.queue.Forget(key)
		}
		p.queue.Done(key)
	}
}

func (p *player) sync(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	pod, err := p.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		p.mu.Lock()
		st := p.state[key]
		p.mu.Unlock()
		if st != nil && p.nodeFault(st.node) != "" {
			return nil // its node is down or cut off: it confirms nothing; requeued when it is back
		}
		return p.forget(ctx, key)
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return nil
	}
	node, err := p.nodes.Get(pod.Spec.NodeName)
	if err != nil || !p.ours(node) {
		return nil // not ours (or node gone)
	}
	if p.nodeFault(node.Name) != "" {
		// Powered off, rebooting or cut off from the API: no status writes,
		// no process changes, no deletion confirmations.
		return nil
	}
	p.mu.Lock()
	st := p.state[key]
	if st == nil || st.uid != pod.UID {
		if st != nil { // same name, new pod: forget the old one first
			p.mu.Unlock()
			if err := p.forget(ctx, key); err != nil {
				return err
			}
			p.mu.Lock()
		}
		st = &podState{uid: pod.UID, node: pod.Spec.NodeName}
		p.state[key] = st
	}
	p.mu.Unlock()

	if pod.DeletionTimestamp != nil {
		return p.terminate(ctx, pod, st)
	}

	// Volumes: wait for the attach-detach controller, then "mount".
	if pod.Annotations[harness.AnnVolumesReady] != "true" {
		vols, pending, err := p.podVolumes(pod)
		if err != nil {
			return err
		}
		if pending != "" {
			p.queue.AddAfter(key, 250*time.Millisecond)
			return nil
		}
		attached := map[string]bool{}
		for _, av := range node.Status.VolumesAttached {
			attached[string(av.Name)] = true
		}
		for _, v := range vols {
			if !attached[v] {
				p.queue.AddAfter(key, 250*time.Millisecond)
				return nil // the node status update will requeue us too
			}
		}
		st.volumes = vols
		if len(vols) > 0 {
			if err := p.setInUse(ctx, node.Name, vols, true); err != nil {
				return err
			}
			st.inUse = true
			log.Printf("%s: volumes %v attached to %s, mounted (in use)", key, vols, node.Name)
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, harness.AnnVolumesReady)
		if _, err := p.client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return err
		}
		return nil
	}
	if len(st.volumes) == 0 && !st.inUse { // player restarted: recover what we mounted
		if vols, pending, err := p.podVolumes(pod); err == nil && pending == "" && len(vols) > 0 {
			st.volumes = vols
			if err := p.setInUse(ctx, node.Name, vols, true); err != nil {
				return err
			}
			st.inUse = true
		}
	}

	if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" && p.standin != "" &&
		(pod.Labels[harness.SQLPodLabel] == harness.SQLPodValue || pod.Labels[harness.LabelStandin] == "true") {
		if err := p.ensureProcess(ctx, pod, st); err != nil {
			return err
		}
	}
	return p.syncReady(ctx, pod)
}

// podVolumes returns the unique names of the pod's CSI volumes; pending names
// a claim not bound yet.
func (p *player) podVolumes(pod *corev1.Pod) (vols []string, pending string, err error) {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		pvc, err := p.pvcs.PersistentVolumeClaims(pod.Namespace).Get(v.PersistentVolumeClaim.ClaimName)
		if apierrors.IsNotFound(err) || (err == nil && pvc.Spec.VolumeName == "") {
			return nil, v.PersistentVolumeClaim.ClaimName, nil
		}
		if err != nil {
			return nil, "", err
		}
		pv, err := p.pvs.Get(pvc.Spec.VolumeName)
		if apierrors.IsNotFound(err) {
			return nil, pvc.Spec.VolumeName, nil
		}
		if err != nil {
			return nil, "", err
		}
		if pv.Spec.CSI != nil {
			vols = append(vols, harness.CSIVolumeName(pv.Spec.CSI.Driver, pv.Spec.CSI.VolumeHandle))
		}
	}
	return vols, "", nil
}

// setInUse adds or removes volumes from node.status.volumesInUse (a plain
// list: a strategic merge patch replaces it as a whole, so read it live).
func (p *player) setInUse(ctx context.Context, nodeName string, vols []string, add bool) error {
	node, err := p.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cur := []string{}
	for _, v := range node.Status.VolumesInUse {
		cur = append(cur, string(v))
	}
	next := slices.Clone(cur)
	for _, v := range vols {
		i := slices.Index(next, v)
		if add && i < 0 {
			next = append(next, v)
		} else if !add && i >= 0 {
			next = slices.Delete(next, i, i+1)
		}
	}
	if slices.Equal(cur, next) {
		return nil
	}
	body, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": node.ResourceVersion},
		"status":   map[string]any{"volumesInUse": next},
	})
	_, err = p.client.CoreV1().Nodes().PatchStatus(ctx, nodeName, body)
	return err
}

func (p *player) terminate(ctx context.Context, pod *corev1.Pod, st *podState) error {
	key := pod.Namespace + "/" + pod.Name
	grace := 30 * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if st.proc != nil {
		p.stopProcess(st.proc, grace)
		p.mu.Lock()
		st.proc = nil
		p.mu.Unlock()
		log.Printf("%s: stand-in stopped (pod deleted)", key)
	}
	if err := p.release(ctx, key, st); err != nil {
		return err
	}
	if pod.Annotations[harness.AnnStopped] != "true" {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, harness.AnnStopped)
		if _, err := p.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// release "unmounts" the pod's volumes: removes them from volumesInUse unless
// another live pod on the node still uses them.
func (p *player) release(ctx context.Context, key string, st *podState) error {
	if !st.inUse {
		return nil
	}
	p.mu.Lock()
	var drop []string
	for _, v := range st.volumes {
		shared := false
		for k, o := range p.state {
			if k != key && o.node == st.node && o.inUse && slices.Contains(o.volumes, v) {
				shared = true
			}
		}
		if !shared {
			drop = append(drop, v)
		}
	}
	p.mu.Unlock()
	if err := p.setInUse(ctx, st.node, drop, false); err != nil {
		return err
	}
	st.inUse = false
	log.Printf("%s: volumes %v unmounted from %s (no longer in use)", key, drop, st.node)
	return nil
}

func (p *player) forget(ctx context.Context, key string) error {
	p.mu.Lock()
	st := p.state[key]
	p.mu.Unlock()
	if st == nil {
		return nil
	}
	if st.proc != nil {
		p.stopProcess(st.proc, 2*time.Second)
		p.mu.Lock()
		st.proc = nil
		p.mu.Unlock()
		log.Printf("%s: stand-in stopped (pod gone)", key)
	}
	if err := p.release(ctx, key, st); err != nil {
		return err
	}
	p.mu.Lock()
	if p.state[key] == st {
		delete(p.state, key)
	}
	p.mu.Unlock()
	return nil
}

func (p *player) ensureProcess(ctx context.Context, pod *corev1.Pod, st *podState) error {
	key := pod.Namespace + "/" + pod.Name
	if p.nodeFault(st.node) != "" {
		return nil // went down since sync looked
	}
	if st.proc != nil {
		select {
		case <-st.proc.done:
		default:
			return nil // running
		}
		if st.proc.stopped {
			return nil
		}
		p.mu.Lock()
		killed := st.proc.killed
		p.mu.Unlock()
		if killed {
			// Killed with its node (power-off, watchdog): the node is back
			// and the pod still bound to it, so start it again, as a
			// kubelet does after a reboot.
			p.mu.Lock()
			st.proc = nil
			p.mu.Unlock()
			log.Printf("%s: node %s back: starting the stand-in again", key, st.node)
			pr, err := p.startProcess(pod, st)
			if err != nil {
				return err
			}
			p.mu.Lock()
			st.proc = pr
			p.mu.Unlock()
			return nil
		}
		// Exited on its own: crash-loop back-off, as the kubelet does.
		delay := p.backoff << min(st.restarts, 5)
		delay = min(delay, 5*time.Minute)
		st.restarts++
		st.nextStart = time.Now().Add(delay)
		code := st.proc.cmd.ProcessState.ExitCode()
		log.Printf("%s: stand-in exited (code %d); restart %d in %v", key, code, st.restarts, delay)
		p.mu.Lock()
		st.proc = nil
		p.mu.Unlock()
		p.patchContainerWaiting(ctx, pod, st.restarts, code)
		p.queue.AddAfter(key, delay)
		return nil
	}
	if time.Now().Before(st.nextStart) {
		p.queue.AddAfter(key, time.Until(st.nextStart))
		return nil
	}
	pr, err := p.startProcess(pod, st)
	if err != nil {
		return err
	}
	p.mu.Lock()
	st.proc = pr
	p.mu.Unlock()
	if st.restarts > 0 {
		p.patchContainerRunning(ctx, pod, st.restarts)
	}
	return nil
}

func (p *player) startProcess(pod *corev1.Pod, st *podState) (*proc, error) {
	key := pod.Namespace + "/" + pod.Name
	uid := string(pod.UID)
	ctr := "sqlservr"
	if len(pod.Spec.Containers) > 0 {
		ctr = pod.Spec.Containers[0].Name
	}
	sock := filepath.Join(p.stateDir, "pods", uid+".sock")
	_ = os.Remove(sock)
	stdoutPath := filepath.Join(p.stateDir, "pods", uid+".log")
	out, err := os.OpenFile(stdoutPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	listen := pod.Status.PodIP + ":1433"
	args := []string{"--listen", listen, "--control", sock, "--mode", "ok", "--foreground"}
	newCmd := func() (*exec.Cmd, io.ReadCloser, error) {
		c := exec.Command(p.standin, args...)
		c.Stderr = out
		r, err := c.StdoutPipe()
		return c, r, err
	}
	cmd, stdout, err := newCmd()
	if err != nil {
		out.Close()
		return nil, err
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cg := ""
	var cgfd *os.File
	if p.cgRoot != "" {
		cg = filepath.Join(p.cgRoot, "edgewarden-e2e", pod.Spec.NodeName, "kubepods", "pod"+uid, ctr)
		if err := os.MkdirAll(cg, 0o755); err == nil {
			if cgfd, err = os.Open(cg); err == nil {
				attr.UseCgroupFD = true
				attr.CgroupFD = int(cgfd.Fd())
			}
		} else {
			log.Printf("%s: cgroup %s: %v (running without)", key, cg, err)
			cg = ""
		}
	}
	cmd.SysProcAttr = attr
	err = cmd.Start()
	if err != nil && attr.UseCgroupFD {
		// clone3 into a cgroup unsupported here: start, then move the process.
		log.Printf("%s: start in cgroup failed (%v); starting, then moving it", key, err)
		attr.UseCgroupFD, attr.CgroupFD = false, 0
		if cmd, stdout, err = newCmd(); err == nil {
			cmd.SysProcAttr = attr
			if err = cmd.Start(); err == nil {
				_ = os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644)
			}
		}
	}
	if cgfd != nil {
		cgfd.Close()
	}
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("start stand-in: %w", err)
	}
	pr := &proc{cmd: cmd, done: make(chan struct{}), handles: volumeHandles(st.volumes)}
	p.ledger.write("start", pr.handles, pod.Spec.NodeName, key)
	pr.info = PodRuntime{
		Namespace: pod.Namespace, Name: pod.Name, UID: uid, Node: pod.Spec.NodeName,
		PodIP: pod.Status.PodIP, Listen: listen, Control: sock, PID: cmd.Process.Pid,
		Cgroup: cg, Stdout: stdoutPath, Restarts: st.restarts,
		Started: time.Now().UTC().Format(time.RFC3339Nano),
	}
	p.writeInfo(pr)
	log.Printf("%s: stand-in started pid %d on %s (node %s, cgroup %q)", key, cmd.Process.Pid, listen, pod.Spec.NodeName, cg)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if strings.HasPrefix(line, "ready ") {
				var parent, engine int
				for _, f := range strings.Fields(line) {
					if v, ok := strings.CutPrefix(f, "parent="); ok {
						fmt.Sscan(v, &parent)
					} else if v, ok := strings.CutPrefix(f, "engine="); ok {
						fmt.Sscan(v, &engine)
					}
				}
				p.mu.Lock()
				pr.info.ParentPID, pr.info.EnginePID = parent, engine
				p.mu.Unlock()
				p.writeInfo(pr)
			}
		}
		_ = cmd.Wait()
		out.Close()
		// The container is gone when its main process is: what is left of
		// it goes too (as the runtime tears the container down), before the
		// ledger says it stopped.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if cg != "" {
			killCgroup(cg)
		}
		p.ledger.write("stop", pr.handles, pod.Spec.NodeName, key)
		close(pr.done)
		p.queue.Add(key)
	}()
	return pr, nil
}

func (p *player) writeInfo(pr *proc) {
	p.mu.Lock()
	b, _ := json.MarshalIndent(pr.info, "", "  ")
	p.mu.Unlock()
	path := filepath.Join(p.stateDir, "pods", pr.info.UID+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		_ = os.Rename(tmp, path)
	}
}

func (p *player) stopProcess(pr *proc, grace time.Duration) {
	pr.stopped = true
	pid := pr.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	grace = min(grace, 10*time.Second)
	select {
	case <-pr.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-pr.done
	}
	// The group may hold children that outlived the leader.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if pr.info.Cgroup != "" {
		killCgroup(pr.info.Cgroup)
	}
	_ = os.Remove(pr.info.Control)
	_ = os.Remove(filepath.Join(p.stateDir, "pods", pr.info.UID+".json"))
}

// killCgroup kills whatever is left in a pod cgroup and removes it.
func killCgroup(cg string) {
	for range 20 {
		if os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0o644) != nil {
			if b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					var pid int
					if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		if err := os.Remove(cg); err == nil || os.IsNotExist(err) {
			_ = os.Remove(filepath.Dir(cg)) // pod<uid>, if empty
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *player) patchContainerWaiting(ctx context.Context, pod *corev1.Pod, restarts, code int) {
	if len(pod.Spec.Containers) == 0 {
		return
	}
	now := metav1.Now()
	body, _ := json.Marshal(map[string]any{"status": map[string]any{
		"conditions": []map[string]any{
			{"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now},
		},
		"containerStatuses": []map[string]any{{
			"name": pod.Spec.Containers[0].Name, "image": pod.Spec.Containers[0].Image,
			"ready": false, "started": false, "restartCount": restarts,
			"state":     map[string]any{"waiting": map[string]any{"reason": "CrashLoopBackOff", "message": "back-off restarting failed container (e2e-player)"}},
			"lastState": map[string]any{"terminated": map[string]any{"exitCode": code, "reason": "Error", "finishedAt": now}},
		}},
	}})
	if _, err := p.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status"); err != nil {
		log.Printf("%s/%s: patch container status: %v", pod.Namespace, pod.Name, err)
	}
}

func (p *player) patchContainerRunning(ctx context.Context, pod *corev1.Pod, restarts int) {
	if len(pod.Spec.Containers) == 0 {
		return
	}
	now := metav1.Now()
	body, _ := json.Marshal(map[string]any{"status": map[string]any{
		"conditions": []map[string]any{
			{"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
		},
		"containerStatuses": []map[string]any{{
			"name": pod.Spec.Containers[0].Name, "image": pod.Spec.Containers[0].Image,
			"ready": true, "started": true, "restartCount": restarts,
			"state": map[string]any{"running": map[string]any{"startedAt": now}, "waiting": nil},
		}},
	}})
	if _, err := p.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status"); err != nil {
		log.Printf("%s/%s: patch container status: %v", pod.Namespace, pod.Name, err)
	}
}

// syncReady applies the kubelet's rule: Ready = ContainersReady and every
// readiness gate's condition True.
func (p *player) syncReady(ctx context.Context, pod *corev1.Pod) error {
	if len(pod.Spec.ReadinessGates) == 0 {
		return nil
	}
	cond := func(t corev1.PodConditionType) *corev1.PodCondition {
		for i := range pod.Status.Conditions {
			if pod.Status.Conditions[i].Type == t {
				return &pod.Status.Conditions[i]
			}
		}
		return nil
	}
	cr := cond(corev1.ContainersReady)
	if cr == nil {
		return nil // kwok has not started the pod yet
	}
	want, reason, msg := corev1.ConditionTrue, "", ""
	if cr.Status != corev1.ConditionTrue {
		want, reason, msg = corev1.ConditionFalse, "ContainersNotReady", "containers with unready status"
	} else {
		for _, g := range pod.Spec.ReadinessGates {
			c := cond(g.ConditionType)
			if c == nil {
				want, reason = corev1.ConditionFalse, "ReadinessGatesNotReady"
				msg = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType)
				break
			}
			if c.Status != corev1.ConditionTrue {
				want, reason = corev1.ConditionFalse, "ReadinessGatesNotReady"
				msg = fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status)
				break
			}
		}
	}
	if r := cond(corev1.PodReady); r != nil && r.Status == want && r.Reason == reason {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"status": map[string]any{
		"conditions": []map[string]any{{
			"type": "Ready", "status": want, "reason": reason, "message": msg,
			"lastTransitionTime": metav1.Now(), "lastProbeTime": nil,
		}},
	}})
	_, err := p.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		log.Printf("%s/%s: Ready=%s %s", pod.Namespace, pod.Name, want, reason)
	}
	return err
}

func (p *player) ensureAgent(ctx context.Context, node string) {
	if p.agentBin == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.agents[node]; ok {
		return
	}
	logf, err := os.OpenFile(filepath.Join(p.stateDir, "agent-"+node+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Printf("agent %s: %v", node, err)
		return
	}
	// Every agent shares this machine's loopback: give each its own HTTP
	// port, the same one across restarts.
	port, ok := p.ports[node]
	if !ok {
		port = p.agentPort + len(p.ports)
		p.ports[node] = port
	}
	args := []string{"run", "--node-name", node, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}
	if p.agentConf != "" {
		args = append(args, "--config", p.agentConf)
	}
	cmd := exec.Command(p.agentBin, args...)
	cmd.Env = append(os.Environ(), "NODE_NAME="+node, "KUBECONFIG="+p.kubecfg)
	if p.watchdogDir != "" {
		w := p.watchdogs[node]
		if w == nil {
			var err error
			if w, err = newWatchdog(p.watchdogDir, node, p.watchdogTO, p.fire); err != nil {
				log.Printf("agent %s: watchdog: %v", node, err)
				logf.Close()
				return
			}
			p.watchdogs[node] = w
		}
		cmd.Env = append(cmd.Env, "EDGEWARDEN_WATCHDOG_DEVICE="+w.path)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Printf("agent %s: start: %v", node, err)
		logf.Close()
		return
	}
	p.agents[node] = cmd
	log.Printf("agent for node %s started (pid %d, http 127.0.0.1:%d)", node, cmd.Process.Pid, port)
	go func() {
		_ = cmd.Wait()
		logf.Close()
		log.Printf("agent for node %s (pid %d) exited: %v", node, cmd.Process.Pid, cmd.ProcessState)
	}()
}

func (p *player) shutdown() {
	p.mu.Lock()
	states := make([]*podState, 0, len(p.state))
	for _, st := range p.state {
		states = append(states, st)
	}
	agents := p.agents
	p.mu.Unlock()
	for _, st := range states {
		if st.proc != nil {
			p.stopProcess(st.proc, 2*time.Second)
		}
	}
	for node, cmd := range agents {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		log.Printf("agent for node %s: SIGTERM", node)
	}
}
