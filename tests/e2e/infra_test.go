package e2e

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"edgewarden.io/e2e/internal/harness"
)

// TestInfraTaintEvictionHandsOverVolume proves the harness on the real
// controllers, with the test itself doing what the agent will do: taint the
// SQL pod's node NoExecute. The taint-eviction controller evicts the pod, the
// ReplicaSet controller creates a replacement, the scheduler puts it on
// another node, the attach-detach controller deletes the old
// VolumeAttachment and creates the new one only once the old one is gone
// (RWO), the e2e attacher attaches it, kwok makes the pod Running only after
// that, and with the readiness gate set True (by the test, standing in for
// the agent) the pod becomes Ready by the kubelet's rule.
func TestInfraTaintEvictionHandsOverVolume(t *testing.T) {
	e := newEnv(t)
	pod := e.deployWorkload()
	nodeA := pod.Spec.NodeName

	// Before the gate is set, kwok must not have made the pod Ready.
	if got := podCond(pod, harness.ReadinessGate); got != "" {
		t.Fatalf("readiness gate condition %s=%s set by someone other than edgewarden", harness.ReadinessGate, got)
	}
	if got := podCond(pod, corev1.PodReady); got == corev1.ConditionTrue {
		t.Fatalf("pod Ready=True without its readiness gate")
	}
	e.setGate(pod, corev1.ConditionTrue)
	e.waitReady(pod, corev1.ConditionTrue, 30*time.Second)
	if va := e.attachedOn(nodeA); len(va) != 1 {
		t.Fatalf("want exactly one attached VolumeAttachment on %s, got %v", nodeA, va)
	}

	var tl timeline
	obs := e.observe(&tl)
	tl.start()
	t.Cleanup(func() { _ = e.setTaint(e.ctx, nodeA, "", false) })
	if err := e.setTaint(e.ctx, nodeA, corev1.TaintEffectNoExecute, true); err != nil {
		t.Fatalf("taint %s: %v", nodeA, err)
	}
	tl.mark("FAULT: node %s tainted %s:NoExecute (as the agent will)", nodeA, harness.Taint)

	repl := e.waitReplacement(pod, 120*time.Second)
	tl.mark("replacement %s Running on %s (observed by the test)", repl.Name, repl.Spec.NodeName)
	if !e.podGone(pod) {
		t.Errorf("old pod %s still exists after the replacement runs", pod.Name)
	}
	if va := e.attachedOn(nodeA); len(va) != 0 {
		t.Errorf("volume still attached to the old node %s: %v", nodeA, va)
	}
	if va := e.attachedOn(repl.Spec.NodeName); len(va) != 1 {
		t.Errorf("want the volume attached to %s, got %v", repl.Spec.NodeName, va)
	}
	if got := podCond(repl, corev1.PodReady); got == corev1.ConditionTrue {
		t.Errorf("replacement Ready=True before its readiness gate was set")
	}
	e.setGate(repl, corev1.ConditionTrue)
	tl.mark("readiness gate set True on %s (the test stands in for the agent)", repl.Name)
	e.waitReady(repl, corev1.ConditionTrue, 30*time.Second)
	tl.mark("replacement %s Ready on %s (observed by the test)", repl.Name, repl.Spec.NodeName)
	time.Sleep(300 * time.Millisecond) // let the informers deliver the last events

	// Ordering: the new attachment became attached only after the old one was detached.
	obs.mu.Lock()
	var oldDetached, newAttached time.Time
	for name, node := range obs.vaNode {
		if node == nodeA {
			oldDetached = obs.detachedAt[name]
		}
		if node == repl.Spec.NodeName {
			newAttached = obs.attachedAt[name]
		}
	}
	obs.mu.Unlock()
	if oldDetached.IsZero() || newAttached.IsZero() {
		t.Errorf("did not observe both the detach from %s (%v) and the attach on %s (%v)", nodeA, oldDetached, repl.Spec.NodeName, newAttached)
	} else if newAttached.Before(oldDetached) {
		t.Errorf("volume attached on %s at %v, before it was detached from %s at %v", repl.Spec.NodeName, newAttached, nodeA, oldDetached)
	}
	obs.check(t)
	tl.print(t, "taint NoExecute -> eviction -> volume hand-over -> replacement Ready")
}
