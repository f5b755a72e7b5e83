// End-to-end tests against the local control plane (scripts/localcluster).
//
// They run only when E2E_KUBECONFIG names the cluster's admin kubeconfig
// (tests/e2e/run sets it); otherwise every test skips, so `go vet ./...` and a
// plain `go test ./...` work anywhere.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"edgewarden.io/e2e/internal/harness"
)

const (
	ns         = "sqledge"
	deployName = "sqledge"
	pvName     = "sqledge-data"
)

type env struct {
	t      *testing.T
	ctx    context.Context
	cfg    *rest.Config
	client *kubernetes.Clientset
	dir    string // cluster dir (E2E_CLUSTER_DIR)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kc := os.Getenv("E2E_KUBECONFIG")
	if kc == "" {
		t.Skip("E2E_KUBECONFIG not set: run tests/e2e/run (it starts scripts/localcluster)")
	}
	cfg, err := harness.Config(kc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.UserAgent = "e2e-test"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("E2E_CLUSTER_DIR")
	if dir == "" {
		dir = filepath.Dir(kc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{t: t, ctx: ctx, cfg: cfg, client: client, dir: dir}
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func (e *env) waitFor(what string, timeout time.Duration, cond func() (bool, error)) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	if err := harness.Poll(ctx, cond); err != nil {
		e.t.Fatalf("waiting for %s (%v): %v", what, timeout, err)
	}
}

// sqlPods lists the live (not terminating) SQL pods.
func (e *env) sqlPods() []corev1.Pod {
	pl, err := e.client.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=sqledge"})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	var out []corev1.Pod
	for _, p := range pl.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func podCond(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// deployWorkload applies k8s/e2e/workload.yaml and waits for its single pod
// to be Running with an IP; the workload is removed when the test ends.
func (e *env) deployWorkload() *corev1.Pod {
	e.t.Helper()
	e.t.Cleanup(e.removeWorkload)
	if err := harness.Apply(e.ctx, e.cfg, filepath.Join(repoRoot(), "k8s", "e2e", "workload.yaml"), nil); err != nil {
		e.t.Fatalf("apply workload: %v", err)
	}
	var pod corev1.Pod
	e.waitFor("the SQL pod to run", 90*time.Second, func() (bool, error) {
		pods := e.sqlPods()
		if len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning && pods[0].Status.PodIP != "" {
			pod = pods[0]
			return true, nil
		}
		return false, nil
	})
	e.t.Logf("SQL pod %s running on %s, IP %s", pod.Name, pod.Spec.NodeName, pod.Status.PodIP)
	return &pod
}

// removeWorkload deletes the Deployment and waits until its pods and the
// volume's attachments are gone, so the next test starts clean.
func (e *env) removeWorkload() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fg := metav1.DeletePropagationForeground
	_ = e.client.AppsV1().Deployments(ns).Delete(ctx, deployName, metav1.DeleteOptions{PropagationPolicy: &fg})
	_ = harness.Poll(ctx, func() (bool, error) {
		pl, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=sqledge"})
		if err != nil {
			return false, nil
		}
		vas, err := e.client.StorageV1().VolumeAttachments().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		return len(pl.Items) == 0 && len(vas.Items) == 0, nil
	})
	e.removeTaints(ctx)
}

func (e *env) removeTaints(ctx context.Context) {
	nl, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, n := range nl.Items {
		_ = e.setTaint(ctx, n.Name, "", false)
	}
}

// setTaint adds (or removes) the edgewarden taint the way the agent will:
// read the node, write the whole taint list with its resourceVersion, retry
// on conflict.
func (e *env) setTaint(ctx context.Context, node string, effect corev1.TaintEffect, add bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints := slices.DeleteFunc(slices.Clone(n.Spec.Taints), func(t corev1.Taint) bool { return t.Key == harness.Taint })
		if add {
			now := metav1.Now()
			taints = append(taints, corev1.Taint{Key: harness.Taint, Value: "e2e", Effect: effect, TimeAdded: &now})
		}
		if len(taints) == len(n.Spec.Taints) && !add {
			return nil
		}
		body, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": n.ResourceVersion},
			"spec":     map[string]any{"taints": taints},
		})
		_, err = e.client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, body, metav1.PatchOptions{})
		return err
	})
}

// setGate sets the edgewarden readiness-gate condition, standing in for the
// agent.
func (e *env) setGate(pod *corev1.Pod, status corev1.ConditionStatus) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{
		"type": harness.ReadinessGate, "status": status, "reason": "E2ETest",
		"message": "set by the e2e test standing in for the agent", "lastTransitionTime": metav1.Now(),
	}}}})
	if _, err := e.client.CoreV1().Pods(pod.Namespace).Patch(e.ctx, pod.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status"); err != nil {
		e.t.Fatalf("set readiness gate on %s: %v", pod.Name, err)
	}
}

func (e *env) waitReady(pod *corev1.Pod, want corev1.ConditionStatus, timeout time.Duration) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("pod %s Ready=%s", pod.Name, want), timeout, func() (bool, error) {
		p, err := e.client.CoreV1().Pods(ns).Get(e.ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return podCond(p, corev1.PodReady) == want, nil
	})
}

// runtimeInfo is what the runtime player writes per pod (see cmd/e2e-player).
type runtimeInfo struct {
	UID       string `json:"uid"`
	Node      string `json:"node"`
	PodIP     string `json:"podIP"`
	Listen    string `json:"listen"`
	Control   string `json:"control"`
	PID       int    `json:"pid"`
	EnginePID int    `json:"enginePid"`
	Cgroup    string `json:"cgroup"`
}

// standIn returns the stand-in the runtime player runs for the pod, or skips
// the test when the cluster runs none (stand-in missing or not functional).
func (e *env) standIn(pod *corev1.Pod) runtimeInfo {
	e.t.Helper()
	if os.Getenv("E2E_STANDIN_OK") != "1" {
		e.t.Skipf("the SQL Server stand-in is not available or not functional (%s); build it with scripts/build",
			os.Getenv("E2E_STANDIN_STATUS"))
	}
	var info runtimeInfo
	path := filepath.Join(e.dir, "runtime", "pods", string(pod.UID)+".json")
	e.waitFor("the stand-in of "+pod.Name, 30*time.Second, func() (bool, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return false, nil
		}
		if json.Unmarshal(b, &info) != nil || info.EnginePID == 0 {
			return false, nil
		}
		return true, nil
	})
	return info
}

// control sends one command to the stand-in's control socket and returns the reply line.
func control(sock, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// prelogin sends a minimal MS-TDS PRELOGIN (VERSION, ENCRYPTION=not supported)
// and returns the first byte of the reply (0x04 for a TDS reply), or an error
// (a timeout when the engine hangs).
func prelogin(addr string, timeout time.Duration) (byte, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	pkt := []byte{
		0x12, 0x01, 0x00, 0x1a, 0x00, 0x00, 0x01, 0x00, // PRELOGIN, EOM, length 26
		0x00, 0x00, 0x0b, 0x00, 0x06, // VERSION at 11, 6 bytes
		0x01, 0x00, 0x11, 0x00, 0x01, // ENCRYPTION at 17, 1 byte
		0xff,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02,
	}
	if _, err := c.Write(pkt); err != nil {
		return 0, err
	}
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil {
		return 0, err
	}
	return b[0], nil
}

// timeline records what happened, in milliseconds since the fault.
type timeline struct {
	mu     sync.Mutex
	t0     time.Time
	events []tlEvent
}

type tlEvent struct {
	at  time.Time
	msg string
}

func (tl *timeline) start() { tl.mu.Lock(); tl.t0 = time.Now(); tl.mu.Unlock() }

func (tl *timeline) mark(format string, args ...any) time.Time {
	now := time.Now()
	tl.mu.Lock()
	tl.events = append(tl.events, tlEvent{now, fmt.Sprintf(format, args...)})
	tl.mu.Unlock()
	return now
}

func (tl *timeline) print(t *testing.T, title string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	sort.SliceStable(tl.events, func(i, j int) bool { return tl.events[i].at.Before(tl.events[j].at) })
	var b strings.Builder
	fmt.Fprintf(&b, "timeline: %s (ms since the fault)\n", title)
	for _, ev := range tl.events {
		fmt.Fprintf(&b, "  %+8d ms  %s\n", ev.at.Sub(tl.t0).Milliseconds(), ev.msg)
	}
	t.Log(b.String())
}

// observer watches pods, VolumeAttachments and nodes, records every change
// that matters on a timeline and checks RWO exclusivity on every
// VolumeAttachment event: never two attached attachments of the PV at once.
type observer struct {
	tl         *timeline
	mu         sync.Mutex
	vas        cache.Store
	violations []string
	detachedAt map[string]time.Time // VA name -> detached/deleted
	attachedAt map[string]time.Time // VA name -> attached
	vaNode     map[string]string
	taintSeen  map[string]bool // "node/effect" -> our taint had that effect at some point
}

func (e *env) observe(tl *timeline) *observer {
	o := &observer{tl: tl, detachedAt: map[string]time.Time{}, attachedAt: map[string]time.Time{}, vaNode: map[string]string{}, taintSeen: map[string]bool{}}
	f := informers.NewSharedInformerFactory(e.client, 0)
	fns := informers.NewSharedInformerFactoryWithOptions(e.client, 0, informers.WithNamespace(ns))

	vaInf := f.Storage().V1().VolumeAttachments().Informer()
	o.vas = vaInf.GetStore()
	_, _ = vaInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			va := obj.(*storagev1.VolumeAttachment)
			o.tl.mark("VolumeAttachment %s for node %s listed or created (attached=%v)", short(va.Name), va.Spec.NodeName, va.Status.Attached)
			o.vaChanged(nil, va)
		},
		UpdateFunc: func(oldObj, newObj any) {
			o.vaChanged(oldObj.(*storagev1.VolumeAttachment), newObj.(*storagev1.VolumeAttachment))
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			va := obj.(*storagev1.VolumeAttachment)
			at := o.tl.mark("VolumeAttachment %s for node %s deleted", short(va.Name), va.Spec.NodeName)
			o.mu.Lock()
			if _, ok := o.detachedAt[va.Name]; !ok {
				o.detachedAt[va.Name] = at
			}
			o.mu.Unlock()
		},
	})
	podInf := fns.Core().V1().Pods().Informer()
	_, _ = podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			p := obj.(*corev1.Pod)
			o.tl.mark("pod %s listed or created (node %q)", p.Name, p.Spec.NodeName)
		},
		UpdateFunc: func(oldObj, newObj any) {
			a, b := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
			if a.Spec.NodeName == "" && b.Spec.NodeName != "" {
				o.tl.mark("pod %s scheduled on %s", b.Name, b.Spec.NodeName)
			}
			if a.DeletionTimestamp == nil && b.DeletionTimestamp != nil {
				o.tl.mark("pod %s on %s: deletion requested (evicted)", b.Name, b.Spec.NodeName)
			}
			if a.Status.Phase != b.Status.Phase {
				o.tl.mark("pod %s on %s: phase %s", b.Name, b.Spec.NodeName, b.Status.Phase)
			}
			if x, y := podCond(a, corev1.PodReady), podCond(b, corev1.PodReady); x != y {
				o.tl.mark("pod %s on %s: Ready=%s", b.Name, b.Spec.NodeName, y)
			}
			if x, y := podCond(a, harness.ReadinessGate), podCond(b, harness.ReadinessGate); x != y {
				o.tl.mark("pod %s on %s: %s=%s", b.Name, b.Spec.NodeName, harness.ReadinessGate, y)
			}
			if a.Annotations[harness.AnnVolumesReady] == "" && b.Annotations[harness.AnnVolumesReady] == "true" {
				o.tl.mark("pod %s on %s: volume attached and mounted (runtime player)", b.Name, b.Spec.NodeName)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			p := obj.(*corev1.Pod)
			o.tl.mark("pod %s on %s deleted", p.Name, p.Spec.NodeName)
		},
	})
	nodeInf := f.Core().V1().Nodes().Informer()
	_, _ = nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			a, b := oldObj.(*corev1.Node), newObj.(*corev1.Node)
			if x, y := taintOf(a), taintOf(b); x != y {
				o.tl.mark("node %s: taint %s %q -> %q", b.Name, harness.Taint, x, y)
				o.mu.Lock()
				o.taintSeen[b.Name+"/"+y] = true
				o.mu.Unlock()
			}
			if x, y := nodeCond(a, harness.NodeCondition), nodeCond(b, harness.NodeCondition); x != y {
				o.tl.mark("node %s: condition %s=%s", b.Name, harness.NodeCondition, y)
			}
		},
	})
	f.Start(e.ctx.Done())
	fns.Start(e.ctx.Done())
	f.WaitForCacheSync(e.ctx.Done())
	fns.WaitForCacheSync(e.ctx.Done())
	return o
}

func short(name string) string {
	if len(name) > 16 {
		return name[:16] + "…"
	}
	return name
}

func taintOf(n *corev1.Node) string {
	for _, t := range n.Spec.Taints {
		if t.Key == harness.Taint {
			return string(t.Effect)
		}
	}
	return ""
}

func nodeCond(n *corev1.Node, typ corev1.NodeConditionType) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func (o *observer) vaChanged(a, b *storagev1.VolumeAttachment) {
	o.mu.Lock()
	o.vaNode[b.Name] = b.Spec.NodeName
	o.mu.Unlock()
	if a != nil && !a.Status.Attached && b.Status.Attached {
		at := o.tl.mark("VolumeAttachment %s: attached to node %s", short(b.Name), b.Spec.NodeName)
		o.mu.Lock()
		o.attachedAt[b.Name] = at
		o.mu.Unlock()
	}
	if a != nil && a.Status.Attached && !b.Status.Attached {
		at := o.tl.mark("VolumeAttachment %s: detached from node %s", short(b.Name), b.Spec.NodeName)
		o.mu.Lock()
		o.detachedAt[b.Name] = at
		o.mu.Unlock()
	}
	if a != nil && a.DeletionTimestamp == nil && b.DeletionTimestamp != nil {
		o.tl.mark("VolumeAttachment %s for node %s: deletion requested (attach-detach controller)", short(b.Name), b.Spec.NodeName)
	}
	// RWO exclusivity, sampled at every attachment event.
	attached := map[string][]string{}
	for _, obj := range o.vas.List() {
		va := obj.(*storagev1.VolumeAttachment)
		if va.Status.Attached && va.Spec.Source.PersistentVolumeName != nil {
			pv := *va.Spec.Source.PersistentVolumeName
			attached[pv] = append(attached[pv], va.Spec.NodeName)
		}
	}
	for pv, nodes := range attached {
		if len(nodes) > 1 {
			msg := fmt.Sprintf("PV %s attached to %d nodes at once: %v", pv, len(nodes), nodes)
			o.tl.mark("VIOLATION: %s", msg)
			o.mu.Lock()
			o.violations = append(o.violations, msg)
			o.mu.Unlock()
		}
	}
}

func (o *observer) check(t *testing.T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, v := range o.violations {
		t.Errorf("RWO exclusivity violated: %s", v)
	}
}

// attachedOn returns the names of the attached VolumeAttachments of pvName on node.
func (e *env) attachedOn(node string) []string {
	vas, err := e.client.StorageV1().VolumeAttachments().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list VolumeAttachments: %v", err)
	}
	var out []string
	for _, va := range vas.Items {
		if va.Spec.NodeName == node && va.Status.Attached && va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == pvName {
			out = append(out, va.Name)
		}
	}
	return out
}

// waitReplacement waits for a live SQL pod other than old to run on another
// node, and returns it.
func (e *env) waitReplacement(old *corev1.Pod, timeout time.Duration) *corev1.Pod {
	e.t.Helper()
	var repl corev1.Pod
	e.waitFor("the replacement pod to run on another node", timeout, func() (bool, error) {
		for _, p := range e.sqlPods() {
			if p.UID != old.UID && p.Spec.NodeName != "" && p.Spec.NodeName != old.Spec.NodeName &&
				p.Status.Phase == corev1.PodRunning {
				repl = p
				return true, nil
			}
		}
		return false, nil
	})
	return &repl
}

func (e *env) podGone(p *corev1.Pod) bool {
	got, err := e.client.CoreV1().Pods(p.Namespace).Get(e.ctx, p.Name, metav1.GetOptions{})
	return apierrors.IsNotFound(err) || (err == nil && got.UID != p.UID)
}
