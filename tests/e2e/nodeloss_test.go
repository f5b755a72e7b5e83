package e2e

// Node loss (docs/node-loss.md): a whole node dies with its agent, and the
// surviving agents' remediator applies node.kubernetes.io/out-of-service and
// force-deletes the SQL pod once the node is provably stopped (its watchdog
// fired, or it was off). They run in the nodeloss pass of tests/e2e/run: five
// kwok nodes, agents with tests/e2e/testdata/agent-nodeloss.yaml (production
// timings), and a watchdog stand-in per agent (e2e-player --watchdog-dir).
//
// A node is powered off by annotating it e2e.edgewarden.io/fault=off (the
// runtime player SIGKILLs its agent and stand-ins and does nothing more for
// it) and taking away its type=kwok label (kwok stops its heartbeats and
// its kube-node-lease Lease); "partitioned" keeps its processes running but
// cut off from the API. Each test puts everything back: label, annotation,
// taints, workloads.
//
// Every stand-in's start and stop is in the writer ledger
// (<cluster>/runtime/writers.log): no two writers of one volume on two nodes
// at any time.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"edgewarden.io/e2e/internal/harness"
)

const (
	taintOutOfService   = "node.kubernetes.io/out-of-service"
	remediatorLease     = "edgewarden-remediator"
	failoverLeasePrefix = "edgewarden-failover-"
	agentController     = "edgewarden.io/agent"
	annFenced           = "edgewarden.io/fenced"
	annPeers            = "edgewarden.io/peers"
	annFailoverNode     = "edgewarden.io/failover-node"
	labelWorkload       = "e2e.edgewarden.io/workload"
	nodeLeaseNS         = "kube-node-lease"
)

// ---- environment ----------------------------------------------------------

// nodeLossEnv is the environment of tests a–d: the agents run the node-loss
// protocol, each with a watchdog stand-in, on at least minNodes kwok nodes.
func nodeLossEnv(t *testing.T, minNodes int) *env {
	t.Helper()
	needAgent(t)
	e := newEnv(t)
	if os.Getenv("E2E_WATCHDOG_DIR") == "" {
		t.Fatal("E2E_WATCHDOG_DIR is not set: the node-loss tests need the agents' watchdog stand-ins (tests/e2e/run's nodeloss pass sets it)")
	}
	if n := len(e.kwokNodes()); n < minNodes {
		t.Fatalf("%d kwok nodes, this test needs %d (kill 2 and keep 3 live for the remediator's quorum): run the nodeloss pass (E2E_PASSES=nodeloss)", n, minNodes)
	}
	e.settleNodes(true)
	return e
}

// kwokNodes lists the kwok nodes (by name, sorted), whatever their state.
func (e *env) kwokNodes() []string {
	nl, err := e.client.CoreV1().Nodes().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list nodes: %v", err)
	}
	var out []string
	for _, n := range nl.Items {
		if n.Labels[harness.NodeTypeLabel] == harness.NodeTypeValue || n.Annotations["kwok.x-k8s.io/node"] == "fake" {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// settleNodes waits until every kwok node is labelled, Ready, without a fault
// annotation or an out-of-service taint, and (agents) its agent's heartbeat
// Lease is fresh: what an earlier test left behind has healed.
func (e *env) settleNodes(agents bool) {
	e.t.Helper()
	var why string
	ok := e.poll(120*time.Second, func() bool {
		for _, name := range e.kwokNodes() {
			n, err := e.client.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
			if err != nil {
				why = err.Error()
				return false
			}
			switch {
			case n.Labels[harness.NodeTypeLabel] != harness.NodeTypeValue:
				why = name + " has no type=kwok label"
			case n.Annotations[harness.AnnFault] != "":
				why = name + " has a fault annotation"
			case nodeCond(n, corev1.NodeReady) != corev1.ConditionTrue:
				why = name + " is not Ready"
			case hasTaint(n, taintOutOfService):
				why = name + " has the out-of-service taint"
			default:
				why = ""
			}
			if why != "" {
				return false
			}
			if agents {
				l, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, "edgewarden-"+name, metav1.GetOptions{})
				if err != nil || !leaseFresh(l) {
					why = "the agent of " + name + " has not renewed its heartbeat Lease"
					return false
				}
			}
		}
		return true
	})
	if !ok {
		e.t.Fatalf("the cluster did not settle before the test (120 s): %s", why)
	}
}

// poll is waitFor without failing: true when cond held within timeout.
func (e *env) poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func leaseFresh(l *coordinationv1.Lease) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return time.Since(l.Spec.RenewTime.Time) < time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second
}

func hasTaint(n *corev1.Node, key string) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
}

// remediator waits for the remediator Lease to have a live holder and
// returns it with the Lease's transitions; "" (and a test error) when none
// is elected within timeout.
func (e *env) remediator(tl *timeline, timeout time.Duration) (string, int32) {
	e.t.Helper()
	var holder string
	var transitions int32
	ok := e.poll(timeout, func() bool {
		l, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, remediatorLease, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || !leaseFresh(l) {
			return false
		}
		holder = *l.Spec.HolderIdentity
		if l.Spec.LeaseTransitions != nil {
			transitions = *l.Spec.LeaseTransitions
		}
		return true
	})
	if !ok {
		e.t.Errorf("no remediator elected within %v (Lease %s/%s has no live holder)", timeout, agentNS, remediatorLease)
		tl.mark("no remediator elected (Lease %s/%s)", agentNS, remediatorLease)
		return "", 0
	}
	tl.mark("remediator: %s (Lease %s, %d transitions)", holder, remediatorLease, transitions)
	return holder, transitions
}

// waitFenced waits until the agents of nodes advertise, in a heartbeat Lease
// renewed after their watchdog was armed, that they are fenced: the
// precondition of a fenced node's death (an unfenced one takes the
// NodeNotFenced path). The agent arms once it has a SQL target, so this can
// lag the pod's Ready by up to one renew interval.
func (e *env) waitFenced(tl *timeline, nodes ...string) {
	e.t.Helper()
	for _, n := range nodes {
		var peers string
		e.waitFor("the agent of "+n+" to advertise "+annFenced+"=true", 60*time.Second, func() (bool, error) {
			l, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, "edgewarden-"+n, metav1.GetOptions{})
			if err != nil || !leaseFresh(l) || l.Annotations[annFenced] != "true" {
				return false, nil
			}
			peers = l.Annotations[annPeers]
			return true, nil
		})
		tl.mark("heartbeat Lease edgewarden-%s says fenced, %s=%q", n, annPeers, peers)
		// The first fenced record already names the peers its roll call
		// asks (the agent arms only once it has listed them), the remediator
		// among them: only a remediator named there frees the node's volume.
		el, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, remediatorLease, metav1.GetOptions{})
		if err == nil && el.Spec.HolderIdentity != nil && *el.Spec.HolderIdentity != n &&
			!slices.Contains(strings.Split(peers, ","), *el.Spec.HolderIdentity) {
			e.t.Errorf("the first fenced record of %s names peers %q, not the remediator %s", n, peers, *el.Spec.HolderIdentity)
		}
	}
}

// cordon marks nodes unschedulable (or schedulable again).
func (e *env) cordon(tl *timeline, on bool, nodes ...string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"spec": map[string]any{"unschedulable": on}})
	for _, n := range nodes {
		if _, err := e.client.CoreV1().Nodes().Patch(e.ctx, n, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
			e.t.Errorf("cordon %s (%v): %v", n, on, err)
		}
	}
	if on {
		tl.mark("nodes %v cordoned", nodes)
	} else {
		tl.mark("nodes %v uncordoned", nodes)
	}
}

// ---- node faults ---------------------------------------------------------

// setFault powers a node off ("off"), cuts it off ("partitioned") or brings
// it back (""): the fault annotation for the runtime player and the type=kwok
// label for kwok, in one patch.
func (e *env) setFault(tl *timeline, node, fault string) {
	e.t.Helper()
	var body []byte
	if fault == "" {
		body, _ = json.Marshal(map[string]any{"metadata": map[string]any{
			"labels":      map[string]any{harness.NodeTypeLabel: harness.NodeTypeValue},
			"annotations": map[string]any{harness.AnnFault: nil},
		}})
	} else {
		body, _ = json.Marshal(map[string]any{"metadata": map[string]any{
			"labels":      map[string]any{harness.NodeTypeLabel: nil},
			"annotations": map[string]any{harness.AnnFault: fault},
		}})
	}
	if _, err := e.client.CoreV1().Nodes().Patch(e.ctx, node, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("node %s: set fault %q: %v", node, fault, err)
	}
	switch fault {
	case "":
		tl.mark("node %s powered on / healed (label type=kwok back, fault annotation removed)", node)
	case "off":
		tl.mark("FAULT: node %s powered off (fault=off, type=kwok label removed)", node)
	default:
		tl.mark("FAULT: node %s %s (type=kwok label removed)", node, fault)
	}
}

// downNodes registers the clean-up that brings nodes back whatever happens:
// label and annotation restored, the out-of-service taint removed if the
// agents left it (at once when the test failed), nodes Ready again.
func (e *env) restoreNodesAtEnd(tl *timeline, nodes ...string) {
	e.t.Cleanup(func() {
		for _, n := range nodes {
			body, _ := json.Marshal(map[string]any{"metadata": map[string]any{
				"labels":      map[string]any{harness.NodeTypeLabel: harness.NodeTypeValue},
				"annotations": map[string]any{harness.AnnFault: nil},
			}})
			_, _ = e.client.CoreV1().Nodes().Patch(e.ctx, n, types.MergePatchType, body, metav1.PatchOptions{})
		}
		if !e.t.Failed() {
			// A passing test saw the agents remove it; give a straggler a moment.
			e.poll(30*time.Second, func() bool {
				for _, n := range nodes {
					if node, err := e.client.CoreV1().Nodes().Get(e.ctx, n, metav1.GetOptions{}); err == nil && hasTaint(node, taintOutOfService) {
						return false
					}
				}
				return true
			})
		}
		for _, n := range nodes {
			if e.removeTaintKey(n, taintOutOfService) {
				tl.mark("clean-up: out-of-service taint removed from %s by the test", n)
			}
		}
		e.poll(90*time.Second, func() bool {
			for _, n := range nodes {
				node, err := e.client.CoreV1().Nodes().Get(e.ctx, n, metav1.GetOptions{})
				if err != nil || nodeCond(node, corev1.NodeReady) != corev1.ConditionTrue {
					return false
				}
			}
			return true
		})
	})
}

// removeTaintKey removes every taint with key from node; true if there was one.
func (e *env) removeTaintKey(node, key string) bool {
	removed := false
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := e.client.CoreV1().Nodes().Get(e.ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints := slices.DeleteFunc(slices.Clone(n.Spec.Taints), func(t corev1.Taint) bool { return t.Key == key })
		if len(taints) == len(n.Spec.Taints) {
			return nil
		}
		body, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": n.ResourceVersion},
			"spec":     map[string]any{"taints": taints},
		})
		_, err = e.client.CoreV1().Nodes().Patch(e.ctx, node, types.MergePatchType, body, metav1.PatchOptions{})
		if err == nil {
			removed = true
		}
		return err
	})
	return removed
}

// restartAgentWithKubeconfig stops node's agent and starts it again with the
// same arguments and environment but KUBECONFIG=kubeconfig (a fault
// proxy's), as restartPlayerAgent does. Unlike that one (a crash, for
// scenario e) it stops the agent with SIGTERM, so it disarms its watchdog on
// the way out: the restart is the test's plumbing, not a fault, and must not
// leave an armed watchdog counting. The runtime player kills the new agent
// when the node is powered off, fires or heals.
func (e *env) restartAgentWithKubeconfig(tl *timeline, node, kubeconfig string) time.Time {
	e.t.Helper()
	pid, err := agentPid(node)
	if err != nil {
		e.t.Fatal(err)
	}
	args, env, err := procArgs(pid)
	if err != nil {
		e.t.Fatal(err)
	}
	env = slices.DeleteFunc(env, func(s string) bool { return strings.HasPrefix(s, "KUBECONFIG=") })
	env = append(env, "KUBECONFIG="+kubeconfig)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	how := "SIGTERM"
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		how = "SIGTERM, then SIGKILL after 10 s"
		time.Sleep(300 * time.Millisecond)
	}
	tl.mark("agent of %s stopped (%s, pid %d) to be started with KUBECONFIG=%s", node, how, pid, kubeconfig)
	logf, err := os.OpenFile(filepath.Join(e.dir, "runtime", "agent-"+node+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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
	return tl.mark("agent of %s started again (pid %d)", node, cmd.Process.Pid)
}

// ---- workloads -----------------------------------------------------------

// workload is a SQL Deployment with its own RWO volume.
type workload struct {
	name   string // Deployment name, label e2e.edgewarden.io/workload
	claim  string
	pv     string
	handle string // CSI volume handle
	sql    bool   // app=sqledge: the agents supervise it (readiness gate)
}

type placement struct {
	avoid  []string // never schedule on these nodes (required)
	prefer string   // preferably on this node
}

// primaryWorkload is k8s/e2e/workload.yaml's Deployment on the volume of
// k8s/e2e/storage.yaml (PV sqledge-data, claim sqledge/sqledge-data).
func primaryWorkload() workload {
	return workload{name: deployName, claim: pvName, pv: pvName, handle: "sqledge-data-0001", sql: true}
}

// extraWorkload is another SQL Deployment like the example, with a volume
// of its own that the test creates.
func extraWorkload(name string, sql bool) workload {
	return workload{name: name, claim: name + "-data", pv: name + "-data", handle: name + "-0001", sql: sql}
}

// deploy creates the workload (its PV and claim too, unless it is the
// primary one) from k8s/e2e/workload.yaml's Deployment, placed as asked, and
// registers its removal.
func (e *env) deploy(w workload, pl placement) {
	e.t.Helper()
	e.t.Cleanup(func() { e.removeWorkloadOf(w) })
	if w.pv != pvName {
		e.createVolume(w)
	}
	f, err := os.Open(filepath.Join(repoRoot(), "k8s", "e2e", "workload.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var d appsv1.Deployment
	if err := utilyaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&d); err != nil {
		e.t.Fatalf("decode workload.yaml: %v", err)
	}
	d.Name, d.Namespace, d.ResourceVersion = w.name, ns, ""
	podLabels := map[string]string{labelWorkload: w.name}
	if w.sql {
		podLabels[harness.SQLPodLabel] = harness.SQLPodValue
	} else {
		// No agent supervises it: no app=sqledge, no readiness gate; the
		// runtime player runs the stand-in all the same.
		podLabels[harness.SQLPodLabel] = w.name
		podLabels[harness.LabelStandin] = "true"
		d.Spec.Template.Spec.ReadinessGates = nil
	}
	d.Labels = map[string]string{harness.SQLPodLabel: podLabels[harness.SQLPodLabel], labelWorkload: w.name}
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: podLabels}
	d.Spec.Template.Labels = podLabels
	for i := range d.Spec.Template.Spec.Volumes {
		if c := d.Spec.Template.Spec.Volumes[i].PersistentVolumeClaim; c != nil {
			c.ClaimName = w.claim
		}
	}
	aff := d.Spec.Template.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		e.t.Fatal("workload.yaml has no required node affinity (type=kwok) to build on")
	}
	terms := aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for _, n := range pl.avoid {
		if n == "" {
			continue
		}
		// A node field selector takes exactly one value: one requirement
		// per node (they are ANDed).
		for i := range terms {
			terms[i].MatchFields = append(terms[i].MatchFields, corev1.NodeSelectorRequirement{
				Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{n},
			})
		}
	}
	if pl.prefer != "" {
		aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = []corev1.PreferredSchedulingTerm{{
			Weight: 100,
			Preference: corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{
				Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{pl.prefer},
			}}},
		}}
	}
	if _, err := e.client.AppsV1().Deployments(ns).Create(e.ctx, &d, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create Deployment %s: %v", w.name, err)
	}
}

func (e *env) createVolume(w workload) {
	e.t.Helper()
	mode := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: w.pv, Labels: map[string]string{labelWorkload: w.name}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "e2e-rwo",
			VolumeMode:                    &mode,
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: w.claim},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: harness.DriverName, VolumeHandle: w.handle, FSType: "ext4",
			}},
		},
	}
	sc := "e2e-rwo"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: w.claim, Namespace: ns, Labels: map[string]string{labelWorkload: w.name}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &sc,
			VolumeName:       w.pv,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	if _, err := e.client.CoreV1().PersistentVolumes().Create(e.ctx, pv, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create PV %s: %v", w.pv, err)
	}
	if _, err := e.client.CoreV1().PersistentVolumeClaims(ns).Create(e.ctx, pvc, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create claim %s: %v", w.claim, err)
	}
	e.waitFor("claim "+w.claim+" bound", 30*time.Second, func() (bool, error) {
		c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, w.claim, metav1.GetOptions{})
		return err == nil && c.Status.Phase == corev1.ClaimBound, nil
	})
}

// removeWorkloadOf deletes the Deployment, force-deletes a pod left stuck on
// a node that never confirms (as an operator would), waits until its pods
// and the volume's attachments are gone, then removes a volume the test made.
func (e *env) removeWorkloadOf(w workload) {
	ctx := e.ctx
	fg := metav1.DeletePropagationForeground
	_ = e.client.AppsV1().Deployments(ns).Delete(ctx, w.name, metav1.DeleteOptions{PropagationPolicy: &fg})
	start := time.Now()
	gone := e.poll(90*time.Second, func() bool {
		pl, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labelWorkload + "=" + w.name})
		if err != nil {
			return false
		}
		for _, p := range pl.Items {
			if p.DeletionTimestamp != nil && time.Since(start) > 20*time.Second {
				zero := int64(0)
				_ = e.client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				e.t.Logf("clean-up: pod %s stuck terminating on %s: force-deleted", p.Name, p.Spec.NodeName)
			}
		}
		return len(pl.Items) == 0 && len(e.vasOf(w.pv)) == 0
	})
	if !gone {
		e.t.Logf("clean-up: workload %s: pods or VolumeAttachments of %s still there after 90 s", w.name, w.pv)
	}
	if w.pv != pvName {
		_ = e.client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, w.claim, metav1.DeleteOptions{})
		_ = e.client.CoreV1().PersistentVolumes().Delete(ctx, w.pv, metav1.DeleteOptions{})
		e.poll(60*time.Second, func() bool {
			_, err1 := e.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, w.claim, metav1.GetOptions{})
			_, err2 := e.client.CoreV1().PersistentVolumes().Get(ctx, w.pv, metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2)
		})
	}
}

// vasOf lists the VolumeAttachments of a PV.
func (e *env) vasOf(pv string) []storagev1.VolumeAttachment {
	vas, err := e.client.StorageV1().VolumeAttachments().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var out []storagev1.VolumeAttachment
	for _, va := range vas.Items {
		if va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == pv {
			out = append(out, va)
		}
	}
	return out
}

// attachedTo says whether the PV's attachment to node is attached.
func (e *env) attachedTo(pv, node string) bool {
	for _, va := range e.vasOf(pv) {
		if va.Spec.NodeName == node && va.Status.Attached {
			return true
		}
	}
	return false
}

func (e *env) podsOf(w workload) []corev1.Pod {
	pl, err := e.client.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: labelWorkload + "=" + w.name})
	if err != nil {
		e.t.Fatalf("list pods of %s: %v", w.name, err)
	}
	return pl.Items
}

// waitWorkloadReady waits for the workload's single live pod to be Ready (for
// a SQL workload: the agent set the gate) and returns it.
func (e *env) waitWorkloadReady(w workload, timeout time.Duration) *corev1.Pod {
	e.t.Helper()
	var pod corev1.Pod
	e.waitFor("workload "+w.name+" Ready", timeout, func() (bool, error) {
		for _, p := range e.podsOf(w) {
			if p.DeletionTimestamp == nil && podCond(&p, corev1.PodReady) == corev1.ConditionTrue {
				pod = p
				return true, nil
			}
		}
		return false, nil
	})
	e.t.Logf("workload %s: pod %s Ready on %s", w.name, pod.Name, pod.Spec.NodeName)
	return &pod
}

// replacementReady returns the workload's pod that replaced old, once it is
// Ready on another node with the volume attached there.
func (e *env) replacementReady(w workload, old *corev1.Pod) *corev1.Pod {
	for _, p := range e.podsOf(w) {
		if p.UID != old.UID && p.DeletionTimestamp == nil && p.Spec.NodeName != "" && p.Spec.NodeName != old.Spec.NodeName &&
			podCond(&p, corev1.PodReady) == corev1.ConditionTrue && e.attachedTo(w.pv, p.Spec.NodeName) {
			return &p
		}
	}
	return nil
}

// ---- what the tests watch --------------------------------------------------

// nlObserver records, next to the observer's pods and VolumeAttachments, what
// the node-loss protocol does: taints (out-of-service above all), Ready and
// labels of nodes, the remediator and failover Leases, heartbeat Leases'
// fencing, kube-node-lease renewals of nodes that are down, and the Events of
// the agents and of the attach-detach controller.
type nlObserver struct {
	tl      *timeline
	started time.Time

	mu          sync.Mutex
	oosAdded    map[string]time.Time // node -> first time the out-of-service taint was seen
	oosRemoved  map[string]time.Time // node -> last time it went away
	ready       map[types.UID]time.Time
	attached    map[string]time.Time // pv/node -> first attached
	holders     []leaseRecord        // the remediator Lease, at each change
	slots       []leaseRecord        // failover slots, at each change
	events      []eventsv1.Event     // the agents' and the Warning ones, since started
	down        map[string]bool      // nodes powered off by the test (kube-node-lease renewals are marked)
	renewedDown map[string]int       // node -> kube-node-lease renewals while down
}

type leaseRecord struct {
	at          time.Time
	name        string
	holder      string
	transitions int32
	node        string // failover slots: edgewarden.io/failover-node
}

func (e *env) observeNodeLoss(tl *timeline) *nlObserver {
	o := &nlObserver{tl: tl, started: time.Now(), oosAdded: map[string]time.Time{}, oosRemoved: map[string]time.Time{},
		ready: map[types.UID]time.Time{}, attached: map[string]time.Time{}, down: map[string]bool{}, renewedDown: map[string]int{}}
	f := informers.NewSharedInformerFactory(e.client, 0)
	fAgent := informers.NewSharedInformerFactoryWithOptions(e.client, 0, informers.WithNamespace(agentNS))
	fNodeLease := informers.NewSharedInformerFactoryWithOptions(e.client, 0, informers.WithNamespace(nodeLeaseNS))
	fPods := informers.NewSharedInformerFactoryWithOptions(e.client, 0, informers.WithNamespace(ns))

	_, _ = f.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(a, b any) { o.nodeChanged(a.(*corev1.Node), b.(*corev1.Node)) },
	})
	_, _ = f.Storage().V1().VolumeAttachments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.vaSeen(obj.(*storagev1.VolumeAttachment)) },
		UpdateFunc: func(_, b any) { o.vaSeen(b.(*storagev1.VolumeAttachment)) },
	})
	_, _ = f.Events().V1().Events().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.eventSeen(obj.(*eventsv1.Event)) },
		UpdateFunc: func(_, b any) { o.eventSeen(b.(*eventsv1.Event)) },
	})
	_, _ = fAgent.Coordination().V1().Leases().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.agentLease(nil, obj.(*coordinationv1.Lease)) },
		UpdateFunc: func(a, b any) { o.agentLease(a.(*coordinationv1.Lease), b.(*coordinationv1.Lease)) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if l, ok := obj.(*coordinationv1.Lease); ok {
				o.tl.mark("Lease %s deleted", l.Name)
			}
		},
	})
	_, _ = fNodeLease.Coordination().V1().Leases().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(a, b any) {
			x, y := a.(*coordinationv1.Lease), b.(*coordinationv1.Lease)
			if x.Spec.RenewTime.Equal(y.Spec.RenewTime) {
				return
			}
			o.mu.Lock()
			down := o.down[y.Name]
			if down {
				o.renewedDown[y.Name]++
			}
			o.mu.Unlock()
			if down {
				o.tl.mark("kube-node-lease/%s renewed by %s while the node is down", y.Name, ptrStr(y.Spec.HolderIdentity))
			}
		},
	})
	_, _ = fPods.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.podSeen(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, b any) { o.podSeen(b.(*corev1.Pod)) },
	})
	for _, fac := range []informers.SharedInformerFactory{f, fAgent, fNodeLease, fPods} {
		fac.Start(e.ctx.Done())
		fac.WaitForCacheSync(e.ctx.Done())
	}
	return o
}

func ptrStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func taintKeys(n *corev1.Node) string {
	var ks []string
	for _, t := range n.Spec.Taints {
		if t.Key != "kwok.x-k8s.io/node" {
			ks = append(ks, t.Key+"="+t.Value+":"+string(t.Effect))
		}
	}
	return strings.Join(ks, ",")
}

func (o *nlObserver) nodeChanged(a, b *corev1.Node) {
	if x, y := hasTaint(a, taintOutOfService), hasTaint(b, taintOutOfService); x != y {
		now := time.Now()
		o.mu.Lock()
		if y {
			if _, ok := o.oosAdded[b.Name]; !ok {
				o.oosAdded[b.Name] = now
			}
		} else {
			o.oosRemoved[b.Name] = now
		}
		o.mu.Unlock()
	}
	if x, y := taintKeys(a), taintKeys(b); x != y {
		o.tl.mark("node %s: taints [%s] -> [%s]", b.Name, x, y)
	}
	if x, y := nodeCond(a, corev1.NodeReady), nodeCond(b, corev1.NodeReady); x != y {
		o.tl.mark("node %s: Ready=%s", b.Name, y)
	}
	if x, y := a.Labels[harness.NodeTypeLabel], b.Labels[harness.NodeTypeLabel]; x != y {
		o.tl.mark("node %s: label type %q -> %q", b.Name, x, y)
	}
	if x, y := a.Annotations[harness.AnnFault], b.Annotations[harness.AnnFault]; x != y {
		o.tl.mark("node %s: fault %q -> %q", b.Name, x, y)
	}
	if b.Spec.Unschedulable != a.Spec.Unschedulable {
		o.tl.mark("node %s: unschedulable=%v", b.Name, b.Spec.Unschedulable)
	}
}

func (o *nlObserver) vaSeen(va *storagev1.VolumeAttachment) {
	if !va.Status.Attached || va.Spec.Source.PersistentVolumeName == nil {
		return
	}
	key := *va.Spec.Source.PersistentVolumeName + "/" + va.Spec.NodeName
	o.mu.Lock()
	if _, ok := o.attached[key]; !ok {
		o.attached[key] = time.Now()
	}
	o.mu.Unlock()
}

func (o *nlObserver) podSeen(p *corev1.Pod) {
	if podCond(p, corev1.PodReady) != corev1.ConditionTrue {
		return
	}
	o.mu.Lock()
	if _, ok := o.ready[p.UID]; !ok {
		o.ready[p.UID] = time.Now()
	}
	o.mu.Unlock()
}

func eventTime(ev *eventsv1.Event) time.Time {
	t := ev.CreationTimestamp.Time
	if !ev.EventTime.IsZero() && ev.EventTime.Time.After(t) {
		t = ev.EventTime.Time
	}
	if ev.Series != nil && ev.Series.LastObservedTime.Time.After(t) {
		t = ev.Series.LastObservedTime.Time
	}
	if ev.DeprecatedLastTimestamp.Time.After(t) {
		t = ev.DeprecatedLastTimestamp.Time
	}
	return t
}

func (o *nlObserver) eventSeen(ev *eventsv1.Event) {
	ours := ev.ReportingController == agentController
	if !ours && ev.Type != corev1.EventTypeWarning {
		return
	}
	// Only what happened since the observer started (creation times are
	// whole seconds).
	if eventTime(ev).Before(o.started.Truncate(time.Second)) {
		return
	}
	o.mu.Lock()
	o.events = append(o.events, *ev.DeepCopy())
	o.mu.Unlock()
	who := ev.ReportingController
	if who == "" {
		who = ev.DeprecatedSource.Component
	}
	note := ev.Note
	if len(note) > 160 {
		note = note[:160] + "…"
	}
	o.tl.mark("Event %s %s on %s %s (%s): %s", ev.Type, ev.Reason, ev.Regarding.Kind, ev.Regarding.Name, who, note)
}

func (o *nlObserver) agentLease(a, b *coordinationv1.Lease) {
	rec := leaseRecord{at: time.Now(), name: b.Name, holder: ptrStr(b.Spec.HolderIdentity), node: b.Annotations[annFailoverNode]}
	if b.Spec.LeaseTransitions != nil {
		rec.transitions = *b.Spec.LeaseTransitions
	}
	var prev leaseRecord
	if a != nil {
		prev = leaseRecord{holder: ptrStr(a.Spec.HolderIdentity), node: a.Annotations[annFailoverNode]}
		if a.Spec.LeaseTransitions != nil {
			prev.transitions = *a.Spec.LeaseTransitions
		}
	}
	switch {
	case b.Name == remediatorLease:
		if a == nil || prev.holder != rec.holder || prev.transitions != rec.transitions {
			o.mu.Lock()
			o.holders = append(o.holders, rec)
			o.mu.Unlock()
			o.tl.mark("remediator Lease: holder %q, %d transitions", rec.holder, rec.transitions)
		}
	case strings.HasPrefix(b.Name, failoverLeasePrefix):
		if a == nil || prev.holder != rec.holder || prev.node != rec.node {
			o.mu.Lock()
			o.slots = append(o.slots, rec)
			o.mu.Unlock()
			o.tl.mark("failover slot %s: holder %q, failover-node %q, pods %q", b.Name, rec.holder, rec.node, b.Annotations["edgewarden.io/failover-pods"])
		}
	case a != nil && a.Annotations[annFenced] != b.Annotations[annFenced]:
		o.tl.mark("heartbeat Lease %s: %s=%q (fenced-until %s)", b.Name, annFenced, b.Annotations[annFenced], b.Annotations["edgewarden.io/fenced-until"])
	}
}

// setDown marks a node as powered off or partitioned by the test: from then on
// renewals of its kube-node-lease Lease are on the timeline (kwok's, if it
// still renews).
func (o *nlObserver) setDown(node string, down bool) {
	o.mu.Lock()
	o.down[node] = down
	o.mu.Unlock()
}

func (o *nlObserver) oosAt(node string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.oosAdded[node]
	return t, ok
}

func (o *nlObserver) readyAt(uid types.UID) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ready[uid]
}

func (o *nlObserver) attachedAt(pv, node string) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.attached[pv+"/"+node]
}

// agentEvents counts the agents' Events by reason about an object (kind and
// name; empty kind: any), since the observer started.
func (o *nlObserver) agentEvents(kind, name string) map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for _, ev := range o.events {
		if ev.ReportingController == agentController && (kind == "" || ev.Regarding.Kind == kind) && (name == "" || ev.Regarding.Name == name) {
			out[ev.Reason]++
		}
	}
	return out
}

// warnings counts Warning Events by reason (any controller) about pods of ns.
func (o *nlObserver) warnings(reason string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, ev := range o.events {
		if ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
			out = append(out, ev.Regarding.Name+": "+ev.Note)
		}
	}
	return out
}

// waitAgentEvents waits until the agents posted every reason about the node.
func (e *env) waitAgentEvents(o *nlObserver, node string, timeout time.Duration, reasons ...string) {
	e.t.Helper()
	var have map[string]int
	ok := e.poll(timeout, func() bool {
		have = o.agentEvents("Node", node)
		for _, r := range reasons {
			if have[r] == 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		e.t.Errorf("Events of %s on Node %s: want reasons %v, have %v", agentController, node, reasons, have)
	}
}

// ---- the writer ledger ----------------------------------------------------

func (e *env) ledger() []harness.LedgerEntry {
	e.t.Helper()
	es, err := harness.ReadLedger(filepath.Join(e.dir, "runtime", harness.LedgerFile))
	if err != nil {
		e.t.Fatalf("writer ledger: %v", err)
	}
	return es
}

// checkLedger puts the writers of the handles since `since` on the timeline
// and fails on two writers at once (the same handle on two nodes).
func (e *env) checkLedger(tl *timeline, since time.Time, handles ...string) []harness.LedgerEntry {
	e.t.Helper()
	var mine []harness.LedgerEntry
	for _, en := range e.ledger() {
		if slices.Contains(handles, en.Handle) && !en.At.Before(since) {
			mine = append(mine, en)
			tl.markAt(en.At, "ledger: %s %s on %s (%s)", en.Event, en.Pod, en.Node, en.Handle)
		}
	}
	for _, v := range harness.Overlaps(harness.WriterIntervals(mine)) {
		e.t.Errorf("writer ledger: %s", v)
	}
	return mine
}

// markAt records an event at a known time (the ledger's, the watchdog's).
func (tl *timeline) markAt(at time.Time, format string, args ...any) {
	tl.mu.Lock()
	tl.events = append(tl.events, tlEvent{at, fmt.Sprintf(format, args...)})
	tl.mu.Unlock()
}

func ledgerFind(es []harness.LedgerEntry, event, node, pod string) (time.Time, bool) {
	for _, en := range es {
		if en.Event == event && en.Node == node && en.Pod == pod {
			return en.At, true
		}
	}
	return time.Time{}, false
}

// watchdogFired is when node's watchdog stand-in fired (first line of
// E2E_WATCHDOG_DIR/watchdog-<node>.fired at or after since).
func watchdogFired(node string, since time.Time) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(os.Getenv("E2E_WATCHDOG_DIR"), "watchdog-"+node+".fired"))
	if err != nil {
		return time.Time{}, false
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(l)); err == nil && !at.Before(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// ---- one node dies ----------------------------------------------------------

// singleFailover waits for the protocol's answer to a dead SQL node: the
// out-of-service taint on it, the old pod force-deleted, the volume moved,
// the replacement Ready on another node. It returns the replacement and the
// times (zero when not within timeout, with a test error).
func (e *env) singleFailover(tl *timeline, o *nlObserver, w workload, old *corev1.Pod, timeout time.Duration) (repl *corev1.Pod, tReady, tAttached time.Time) {
	e.t.Helper()
	node := old.Spec.NodeName
	deadline := time.Now().Add(timeout)
	left := func() time.Duration { return max(time.Until(deadline), time.Second) }
	if !e.poll(left(), func() bool { _, ok := o.oosAt(node); return ok }) {
		e.t.Errorf("no %s taint on the dead node %s within %v", taintOutOfService, node, timeout)
		return nil, time.Time{}, time.Time{}
	}
	if !e.poll(left(), func() bool { return e.podGone(old) }) {
		e.t.Errorf("the old pod %s on %s was not deleted within %v", old.Name, node, timeout)
		return nil, time.Time{}, time.Time{}
	}
	tl.mark("old pod %s gone from the API", old.Name)
	if !e.poll(left(), func() bool { repl = e.replacementReady(w, old); return repl != nil }) {
		e.t.Errorf("no replacement of %s Ready on another node with %s attached there within %v", w.name, w.pv, timeout)
		return nil, time.Time{}, time.Time{}
	}
	tReady = o.readyAt(repl.UID)
	if tReady.IsZero() {
		tReady = time.Now()
	}
	tAttached = o.attachedAt(w.pv, repl.Spec.NodeName)
	tl.markAt(tReady, "replacement %s Ready on %s", repl.Name, repl.Spec.NodeName)
	// The volume moved: attached to the new node only.
	for _, va := range e.vasOf(w.pv) {
		if va.Spec.NodeName == node {
			e.t.Errorf("VolumeAttachment %s of %s still for the dead node %s (attached=%v)", va.Name, w.pv, node, va.Status.Attached)
		}
	}
	return repl, tReady, tAttached
}

// figure reports and bounds one time from the fault.
func figure(t *testing.T, tl *timeline, what string, at time.Time, bound, goal time.Duration) {
	t.Helper()
	if at.IsZero() {
		return
	}
	d := at.Sub(tl.t0)
	t.Logf("RESULT %s: %.1f s after the fault (bound %v, goal %v)", what, d.Seconds(), bound, goal)
	if d > bound {
		t.Errorf("%s took %.1f s, more than %v", what, d.Seconds(), bound)
	}
}

// waitOOSRemoved waits for the out-of-service taint to leave node once it is
// back.
func (e *env) waitOOSRemoved(tl *timeline, node string, timeout time.Duration) {
	e.t.Helper()
	if !e.poll(timeout, func() bool {
		n, err := e.client.CoreV1().Nodes().Get(e.ctx, node, metav1.GetOptions{})
		return err == nil && !hasTaint(n, taintOutOfService)
	}) {
		e.t.Errorf("the %s taint is still on %s %v after it came back", taintOutOfService, node, timeout)
		return
	}
	tl.mark("out-of-service taint gone from %s", node)
}

// printTimeline prints the timeline when the test ends, whatever happened.
func printTimeline(t *testing.T, tl *timeline, title string) {
	t.Cleanup(func() { tl.print(t, title) })
}

// a: the SQL node dies (powered off with its agent). The remediator fences
// nothing (the node is off) and must not need to: the node's Lease said
// fenced, so after the deadline it applies out-of-service, force-deletes the
// pod, and the replacement is Ready on another node. Then the node comes back
// and the taint is removed.
func TestNodeLossA_NodeDies(t *testing.T) {
	e := nodeLossEnv(t, 3)
	var tl timeline
	tl.start()
	printTimeline(t, &tl, "nodeloss a: the SQL node dies")
	leader, _ := e.remediator(&tl, 60*time.Second)
	w := primaryWorkload()
	pl := placement{}
	if leader != "" {
		pl.avoid = []string{leader} // the leader survives: this is the plain case (c is the other)
	}
	e.deploy(w, pl)
	pod := e.waitWorkloadReady(w, 90*time.Second)
	node := pod.Spec.NodeName
	e.waitFenced(&tl, node)
	obs := e.observe(&tl)
	nl := e.observeNodeLoss(&tl)
	since := time.Now()

	tl.start()
	e.restoreNodesAtEnd(&tl, node)
	nl.setDown(node, true)
	e.setFault(&tl, node, "off")

	repl, tReady, tAttached := e.singleFailover(&tl, nl, w, pod, 120*time.Second)
	if t0, ok := nl.oosAt(node); ok {
		tl.markAt(t0, "out-of-service applied on %s (first seen)", node)
	}
	benchLine(t, &tl, "nodeloss-a", tReady, tAttached)
	figure(t, &tl, "nodeloss a: node death -> replacement Ready", tReady, 60*time.Second, 30*time.Second)
	figure(t, &tl, "nodeloss a: node death -> volume attached on the new node", tAttached, 60*time.Second, 30*time.Second)

	nl.setDown(node, false)
	e.setFault(&tl, node, "")
	e.waitOOSRemoved(&tl, node, 60*time.Second)
	e.waitAgentEvents(nl, node, 15*time.Second, "OutOfServiceApplied", "PodForceDeleted", "OutOfServiceRemoved")
	if repl != nil {
		// the replacement kept running through the old node's return
		if p, err := e.client.CoreV1().Pods(ns).Get(e.ctx, repl.Name, metav1.GetOptions{}); err != nil || p.UID != repl.UID {
			t.Errorf("the replacement %s did not survive the old node's return: %v", repl.Name, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	e.checkLedger(&tl, since, w.handle)
	obs.check(t)
}

// b: the SQL node is cut off from the API server but keeps running (its
// agent talks through a fault proxy that then blackholes everything). The
// agent learns from its peers that it is the one cut off, stops feeding its
// watchdog, and the watchdog fires — stopping the engine — before the
// remediator's deadline; only then does the volume move. The writer ledger
// shows the old writer stopped before the new one started.
func TestNodeLossB_Partitioned(t *testing.T) {
	e := nodeLossEnv(t, 3)
	var tl timeline
	tl.start()
	printTimeline(t, &tl, "nodeloss b: the SQL node is partitioned")
	leader, _ := e.remediator(&tl, 60*time.Second)
	w := primaryWorkload()
	pl := placement{}
	if leader != "" {
		pl.avoid = []string{leader}
	}
	e.deploy(w, pl)
	pod := e.waitWorkloadReady(w, 90*time.Second)
	node := pod.Spec.NodeName
	key := pod.Namespace + "/" + pod.Name

	// The node's agent, through the fault proxy.
	p := e.startProxy()
	restarted := e.restartAgentWithKubeconfig(&tl, node, p.kubeconfig)
	t.Cleanup(func() {
		// Healing makes the player replace this agent with its own; if the
		// test ended before, the agent must not stay on a dead proxy.
		if pid, err := agentPid(node); err == nil {
			if _, env, err := procArgs(pid); err == nil && slices.Contains(env, "KUBECONFIG="+p.kubeconfig) {
				e.restartAgentWithKubeconfig(&tl, node, e.agentKubeconfig())
			}
		}
	})
	e.restoreNodesAtEnd(&tl, node) // heals: the player kills this agent and starts its own
	e.waitFor("the restarted agent of "+node+" to renew its heartbeat Lease with "+annFenced+"=true", 90*time.Second, func() (bool, error) {
		l, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, "edgewarden-"+node, metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil {
			return false, nil
		}
		return l.Spec.RenewTime.After(restarted) && l.Annotations[annFenced] == "true", nil
	})
	if n := p.requests(t).Counts["PUT leases"]; n == 0 {
		t.Fatalf("the restarted agent renewed its Lease, but not through the proxy (no PUT leases there)")
	}
	tl.mark("the restarted agent renewed its Lease through the proxy, fenced")
	pod = e.waitWorkloadReady(w, 30*time.Second)

	obs := e.observe(&tl)
	nl := e.observeNodeLoss(&tl)
	since := time.Now()
	tl.start()
	p.faults(t, map[string]any{"match": map[string]any{}, "action": "blackhole"})
	p.post(t, "/drop-watches", nil)
	nl.setDown(node, true)
	e.setFault(&tl, node, "partitioned")
	tl.mark("FAULT: the proxy blackholes every request of %s's agent (open watches dropped)", node)

	// The watchdog fires: lease duration + watchdog timeout at the latest,
	// plus slack.
	var fired time.Time
	if !e.poll(90*time.Second, func() bool { var ok bool; fired, ok = watchdogFired(node, since); return ok }) {
		t.Errorf("the watchdog of the partitioned node %s did not fire within 90 s", node)
	} else {
		tl.markAt(fired, "watchdog of %s fired (%s)", node, filepath.Join(os.Getenv("E2E_WATCHDOG_DIR"), "watchdog-"+node+".fired"))
	}

	repl, tReady, tAttached := e.singleFailover(&tl, nl, w, pod, 150*time.Second)
	benchLine(t, &tl, "nodeloss-b", tReady, tAttached)
	if repl != nil {
		t.Logf("RESULT nodeloss b: partition -> replacement Ready %.1f s, volume attached %.1f s", tReady.Sub(tl.t0).Seconds(), tAttached.Sub(tl.t0).Seconds())
	}
	if oos, ok := nl.oosAt(node); ok && !fired.IsZero() && !fired.Before(oos) {
		t.Errorf("out-of-service applied on %s at %+d ms, before its watchdog fired (%+d ms)", node, oos.Sub(tl.t0).Milliseconds(), fired.Sub(tl.t0).Milliseconds())
	}

	// The ledger: the old stand-in was stopped by the fire, before the new
	// one started.
	time.Sleep(300 * time.Millisecond)
	es := e.checkLedger(&tl, since, w.handle)
	stop, stopped := ledgerFind(es, "stop", node, key)
	switch {
	case !stopped:
		t.Errorf("the writer ledger has no stop of %s on %s", key, node)
	case !fired.IsZero() && (stop.Before(fired) || stop.Sub(fired) > 5*time.Second):
		t.Errorf("the stand-in of %s stopped at %+d ms, not by the watchdog's fire (%+d ms)", key, stop.Sub(tl.t0).Milliseconds(), fired.Sub(tl.t0).Milliseconds())
	}
	if repl != nil {
		start, ok := ledgerFind(es, "start", repl.Spec.NodeName, repl.Namespace+"/"+repl.Name)
		if !ok {
			t.Errorf("the writer ledger has no start of the replacement %s on %s", repl.Name, repl.Spec.NodeName)
		} else if stopped && !stop.Before(start) {
			t.Errorf("the new writer started (%+d ms) before the old one stopped (%+d ms)", start.Sub(tl.t0).Milliseconds(), stop.Sub(tl.t0).Milliseconds())
		}
	}

	// Heal.
	p.clear(t)
	nl.setDown(node, false)
	e.setFault(&tl, node, "")
	e.waitOOSRemoved(&tl, node, 90*time.Second)
	e.waitAgentEvents(nl, node, 15*time.Second, "OutOfServiceApplied", "PodForceDeleted", "OutOfServiceRemoved")
	obs.check(t)
}

// c: the remediator's own node dies with the SQL node. Another agent takes
// the election Lease and carries out (a).
func TestNodeLossC_LeaderDies(t *testing.T) {
	e := nodeLossEnv(t, 5)
	var tl timeline
	tl.start()
	printTimeline(t, &tl, "nodeloss c: the remediator's node dies with the SQL node")
	leader, transitions := e.remediator(&tl, 60*time.Second)
	if leader == "" {
		t.FailNow()
	}
	w := primaryWorkload()
	e.deploy(w, placement{avoid: []string{leader}})
	pod := e.waitWorkloadReady(w, 90*time.Second)
	node := pod.Spec.NodeName
	e.waitFenced(&tl, node)
	obs := e.observe(&tl)
	nl := e.observeNodeLoss(&tl)
	since := time.Now()

	tl.start()
	e.restoreNodesAtEnd(&tl, leader, node)
	nl.setDown(leader, true)
	nl.setDown(node, true)
	e.setFault(&tl, leader, "off")
	e.setFault(&tl, node, "off")

	var holder string
	var now int32
	e.waitFor("another agent to take the remediator Lease", 90*time.Second, func() (bool, error) {
		l, err := e.client.CoordinationV1().Leases(agentNS).Get(e.ctx, remediatorLease, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		holder = *l.Spec.HolderIdentity
		if l.Spec.LeaseTransitions != nil {
			now = *l.Spec.LeaseTransitions
		}
		return holder != "" && holder != leader && leaseFresh(l), nil
	})
	tNewLeader := tl.mark("new remediator: %s (transitions %d -> %d)", holder, transitions, now)
	if holder == node {
		t.Errorf("the remediator Lease went to the dead SQL node %s", node)
	}
	if now <= transitions {
		t.Errorf("leaseTransitions did not grow: %d -> %d", transitions, now)
	}
	t.Logf("RESULT nodeloss c: new remediator %s %.1f s after the fault", holder, tNewLeader.Sub(tl.t0).Seconds())

	repl, tReady, tAttached := e.singleFailover(&tl, nl, w, pod, 150*time.Second)
	benchLine(t, &tl, "nodeloss-c", tReady, tAttached)
	if repl != nil {
		t.Logf("RESULT nodeloss c: node death -> replacement Ready %.1f s, volume attached %.1f s", tReady.Sub(tl.t0).Seconds(), tAttached.Sub(tl.t0).Seconds())
	}
	if _, ok := nl.oosAt(leader); ok {
		t.Errorf("out-of-service applied on %s, the old leader's node, which hosts no SQL pod", leader)
	}

	nl.setDown(leader, false)
	nl.setDown(node, false)
	e.setFault(&tl, leader, "")
	e.setFault(&tl, node, "")
	e.waitOOSRemoved(&tl, node, 90*time.Second)
	e.waitAgentEvents(nl, node, 15*time.Second, "OutOfServiceApplied", "PodForceDeleted", "OutOfServiceRemoved")
	time.Sleep(300 * time.Millisecond)
	e.checkLedger(&tl, since, w.handle)
	obs.check(t)
}

// d: two SQL nodes die together with maxConcurrentFailovers 1: one
// out-of-service at a time. The second node waits for the slot (an Event
// WaitingForFailoverBudget) and is tainted only once the first replacement is
// Ready, which gives the slot back.
//
// The two nodes' fencing deadlines follow their agents' last renewals, which
// can be a renew interval apart, while a failover takes 2–3 s: left alone the
// first failover is often over before the second node is due, and nobody
// waits. So the surviving nodes are cordoned before the fault, and
// uncordoned only once the second node is seen waiting: the first
// replacement stays Pending (not Ready) meanwhile and its slot stays taken —
// a cluster briefly without room for it. The times printed include that
// hold.
func TestNodeLossD_BudgetOfOne(t *testing.T) {
	e := nodeLossEnv(t, 5)
	var tl timeline
	tl.start()
	printTimeline(t, &tl, "nodeloss d: two SQL nodes die, a budget of one")
	leader, _ := e.remediator(&tl, 60*time.Second)
	var pick []string
	for _, n := range e.kwokNodes() {
		if n != leader {
			pick = append(pick, n)
		}
	}
	x, y := pick[0], pick[1]
	w1, w2 := primaryWorkload(), extraWorkload("sqledge-2", true)
	e.deploy(w1, placement{avoid: []string{leader, y}, prefer: x})
	e.deploy(w2, placement{avoid: []string{leader, x}, prefer: y})
	pod1 := e.waitWorkloadReady(w1, 90*time.Second)
	pod2 := e.waitWorkloadReady(w2, 90*time.Second)
	n1, n2 := pod1.Spec.NodeName, pod2.Spec.NodeName
	if n1 == n2 {
		t.Fatalf("both SQL pods on %s: the test needs them on two nodes", n1)
	}
	e.waitFenced(&tl, n1, n2)
	obs := e.observe(&tl)
	nl := e.observeNodeLoss(&tl)
	since := time.Now()
	var others []string
	for _, n := range e.kwokNodes() {
		if n != n1 && n != n2 {
			others = append(others, n)
		}
	}
	e.cordon(&tl, true, others...)
	t.Cleanup(func() { e.cordon(&tl, false, others...) })

	tl.start()
	e.restoreNodesAtEnd(&tl, n1, n2)
	nl.setDown(n1, true)
	nl.setDown(n2, true)
	e.setFault(&tl, n1, "off")
	e.setFault(&tl, n2, "off")

	// The first out-of-service.
	var first, second string
	e.waitFor("the first out-of-service taint", 120*time.Second, func() (bool, error) {
		_, ok1 := nl.oosAt(n1)
		_, ok2 := nl.oosAt(n2)
		switch {
		case ok1 && ok2:
			t1, _ := nl.oosAt(n1)
			t2, _ := nl.oosAt(n2)
			if t1.Before(t2) {
				first, second = n1, n2
			} else {
				first, second = n2, n1
			}
		case ok1:
			first, second = n1, n2
		case ok2:
			first, second = n2, n1
		}
		return first != "", nil
	})
	byNode := map[string]struct {
		w   workload
		pod *corev1.Pod
	}{n1: {w1, pod1}, n2: {w2, pod2}}
	tFirst, _ := nl.oosAt(first)
	tl.markAt(tFirst, "first out-of-service: %s", first)
	// The first replacement cannot be scheduled (the survivors are
	// cordoned): the slot stays taken and the second node must wait.
	if !e.poll(90*time.Second, func() bool { return nl.agentEvents("Node", second)["WaitingForFailoverBudget"] > 0 }) {
		t.Errorf("no Event WaitingForFailoverBudget on %s within 90 s of the fault while the slot was taken for %s (agent Events on it: %v)",
			second, first, nl.agentEvents("Node", second))
	}
	if at, ok := nl.oosAt(second); ok {
		t.Errorf("out-of-service on %s at %+d ms while the only slot was taken for %s", second, at.Sub(tl.t0).Milliseconds(), first)
	}
	e.cordon(&tl, false, others...)

	repl1, tReady1, tAtt1 := e.singleFailover(&tl, nl, byNode[first].w, byNode[first].pod, 120*time.Second)
	repl2, tReady2, tAtt2 := e.singleFailover(&tl, nl, byNode[second].w, byNode[second].pod, max(120*time.Second-time.Since(tl.t0), 10*time.Second))
	tSecond, ok := nl.oosAt(second)
	switch {
	case !ok:
		t.Errorf("no out-of-service on %s", second)
	case repl1 == nil:
	case !tSecond.After(tReady1):
		t.Errorf("out-of-service on %s at %+d ms, before the first replacement was Ready (%+d ms): the budget of one was not kept",
			second, tSecond.Sub(tl.t0).Milliseconds(), tReady1.Sub(tl.t0).Milliseconds())
	}
	benchLine(t, &tl, "nodeloss-d1", tReady1, tAtt1)
	benchLine(t, &tl, "nodeloss-d2", tReady2, tAtt2)
	if repl1 != nil && repl2 != nil {
		t.Logf("RESULT nodeloss d: first replacement Ready %.1f s, second %.1f s after the fault (out-of-service %s at %.1f s, %s at %.1f s)",
			tReady1.Sub(tl.t0).Seconds(), tReady2.Sub(tl.t0).Seconds(), first, tFirst.Sub(tl.t0).Seconds(), second, tSecond.Sub(tl.t0).Seconds())
		figure(t, &tl, "nodeloss d: second replacement Ready", tReady2, 120*time.Second, 120*time.Second)
	}

	// The slot was held by one at a time.
	nl.mu.Lock()
	slots := slices.Clone(nl.slots)
	nl.mu.Unlock()
	var slotAtFirst, slotAtSecond string
	for _, r := range slots {
		if r.name != failoverLeasePrefix+"0" {
			t.Errorf("failover slot %s used with maxConcurrentFailovers 1", r.name)
			continue
		}
		// The slot is written before the taint, but two informers may
		// deliver them in either order: half a second of slack (a slot is
		// given back only once a replacement is Ready, seconds later).
		if !r.at.After(tFirst.Add(500 * time.Millisecond)) {
			slotAtFirst = r.node
		}
		if ok && !r.at.After(tSecond.Add(500*time.Millisecond)) {
			slotAtSecond = r.node
		}
	}
	if slotAtFirst != first {
		t.Errorf("when %s was tainted out-of-service the slot %s0 named %q, not it", first, failoverLeasePrefix, slotAtFirst)
	}
	if ok && slotAtSecond != second {
		t.Errorf("when %s was tainted out-of-service the slot %s0 named %q, not it", second, failoverLeasePrefix, slotAtSecond)
	}

	nl.setDown(n1, false)
	nl.setDown(n2, false)
	e.setFault(&tl, n1, "")
	e.setFault(&tl, n2, "")
	e.waitOOSRemoved(&tl, n1, 90*time.Second)
	e.waitOOSRemoved(&tl, n2, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	e.checkLedger(&tl, since, w1.handle, w2.handle)
	obs.check(t)
}

// e: the vanilla baseline. A SQL workload no agent supervises (no
// app=sqledge: another label, no readiness gate; the runtime player runs its
// stand-in all the same) loses its node. For E2E_VANILLA_SECONDS (60) nothing
// moves it: the old pod stays bound to the dead node and no replacement is
// Ready with the volume — Kubernetes waits for the node-monitor grace period,
// then the 300 s not-ready/unreachable tolerations, then a pod it cannot
// delete (nobody confirms it) and a volume it will not detach for 6 minutes.
func TestNodeLossE_VanillaBaseline(t *testing.T) {
	e := newEnv(t)
	if n := len(e.kwokNodes()); n < 2 {
		t.Fatalf("%d kwok nodes: the baseline needs a second node to fail over to", n)
	}
	e.settleNodes(false)
	T := envDuration("E2E_VANILLA_SECONDS", 60*time.Second)
	var tl timeline
	tl.start()
	printTimeline(t, &tl, "nodeloss e: vanilla baseline, the node of an unsupervised SQL workload dies")
	w := extraWorkload("vanilla-sql", false)
	e.deploy(w, placement{})
	pod := e.waitWorkloadReady(w, 90*time.Second)
	node := pod.Spec.NodeName
	obs := e.observe(&tl)
	nl := e.observeNodeLoss(&tl)
	since := time.Now()

	tl.start()
	e.restoreNodesAtEnd(&tl, node)
	nl.setDown(node, true)
	e.setFault(&tl, node, "off")

	var repl *corev1.Pod
	deadline := time.Now().Add(T)
	for time.Now().Before(deadline) && repl == nil {
		repl = e.replacementReady(w, pod)
		time.Sleep(500 * time.Millisecond)
	}
	tl.mark("end of observation window T=%v", T)
	state := "gone"
	if cur, err := e.client.CoreV1().Pods(ns).Get(e.ctx, pod.Name, metav1.GetOptions{}); err == nil && cur.UID == pod.UID {
		state = fmt.Sprintf("phase %s, Ready=%s, terminating=%v, on %s", cur.Status.Phase, podCond(cur, corev1.PodReady), cur.DeletionTimestamp != nil, cur.Spec.NodeName)
	}
	var others []string
	for _, p := range e.podsOf(w) {
		if p.UID != pod.UID {
			others = append(others, fmt.Sprintf("%s on %q (phase %s, Ready=%s)", p.Name, p.Spec.NodeName, p.Status.Phase, podCond(&p, corev1.PodReady)))
		}
	}
	multi := nl.warnings("FailedAttachVolume")
	var tReady, tAttached time.Time
	if repl != nil {
		tReady, tAttached = nl.readyAt(repl.UID), nl.attachedAt(w.pv, repl.Spec.NodeName)
	}
	benchLine(t, &tl, "nodeloss-vanilla", tReady, tAttached)
	if repl == nil {
		t.Logf("RESULT nodeloss-vanilla: no replacement Ready with the volume within %v — old pod %s: %s; other pods: %v; FailedAttachVolume events: %d %v; expected: vanilla Kubernetes waits for the node-monitor grace period, the 300 s tolerations and a kubelet that never answers",
			T, pod.Name, state, others, len(multi), multi)
	} else {
		t.Errorf("RESULT nodeloss-vanilla: a replacement %s was Ready on %s with the volume within %v — unexpected without an agent", repl.Name, repl.Spec.NodeName, T)
	}
	if _, ok := nl.oosAt(node); ok {
		t.Errorf("out-of-service applied on %s, which hosts no supervised SQL pod", node)
	}
	nl.mu.Lock()
	renewed := nl.renewedDown[node]
	nl.mu.Unlock()
	t.Logf("kwok: kube-node-lease/%s renewed %d times while the node had no type=kwok label", node, renewed)

	nl.setDown(node, false)
	e.setFault(&tl, node, "")
	time.Sleep(300 * time.Millisecond)
	e.checkLedger(&tl, since, w.handle)
	obs.check(t)
}
