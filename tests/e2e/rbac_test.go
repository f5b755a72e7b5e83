package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"edgewarden.io/e2e/internal/harness"
)

const (
	rbacAgentNS   = "edgewarden" // k8s/base: the agent's namespace and ServiceAccount
	rbacAgentSA   = "edgewarden"
	rbacTestNS    = "edgewarden-rbac-e2e"
	rbacTestPod   = "rbac-target"
	rbacTestLease = "edgewarden-rbac-e2e" // not edgewarden-<node>: a running agent owns those
)

// The rules k8s/base/rbac.yaml grants, as group/resource:verb, in a namespace
// other than the agent's and in the agent's own (plus the Leases).
var rbacWantRules = []string{
	"/nodes:get", "/nodes:list", "/nodes:watch", "/nodes:patch",
	"/nodes/status:patch",
	"/pods:get", "/pods:list", "/pods:watch", "/pods:delete",
	"/pods/status:patch",
	"/pods/eviction:create",
	"events.k8s.io/events:create", "events.k8s.io/events:patch",
}
var rbacWantLeaseRules = []string{
	"coordination.k8s.io/leases:get", "coordination.k8s.io/leases:list", "coordination.k8s.io/leases:watch",
	"coordination.k8s.io/leases:create", "coordination.k8s.io/leases:update",
}

// TestRBACAgentIdentity proves the agent's identity as scripts/localcluster
// sets it up (k8s/base applied, E2E_CLUSTER_DIR/agent.kubeconfig holding a
// TokenRequest token of edgewarden/edgewarden): every request the agent makes
// is allowed, with real calls on real objects, and a sample of what it must
// not do is refused with 403. Calls that would change something that matters
// are sent with dryRun=All (authorisation happens before the dry run, so a
// refusal is still a real 403); what the test creates it deletes.
func TestRBACAgentIdentity(t *testing.T) {
	e := newEnv(t)
	kc := filepath.Join(e.dir, "agent.kubeconfig")
	if _, err := os.Stat(kc); err != nil {
		t.Fatalf("the agent's kubeconfig: %v (scripts/localcluster up writes it)", err)
	}
	acfg, err := harness.Config(kc)
	if err != nil {
		t.Fatal(err)
	}
	acfg.UserAgent = "e2e-test-as-agent"
	agent, err := kubernetes.NewForConfig(acfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := e.ctx
	dryRun := []string{metav1.DryRunAll}

	// Who the kubeconfig is: the ServiceAccount, and not a superuser.
	ssr, err := agent.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview as the agent: %v", err)
	}
	ui := ssr.Status.UserInfo
	t.Logf("agent identity: %s groups=%v", ui.Username, ui.Groups)
	if want := "system:serviceaccount:" + rbacAgentNS + ":" + rbacAgentSA; ui.Username != want {
		t.Fatalf("agent.kubeconfig authenticates as %q, want %q", ui.Username, want)
	}
	if slices.Contains(ui.Groups, "system:masters") {
		t.Fatalf("agent identity is in system:masters: %v", ui.Groups)
	}

	// A kwok node, and a pod that stays Pending (no node matches its selector,
	// no toleration for the kwok taint) to patch, watch and evict (dry run).
	nodes, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: harness.NodeTypeLabel + "=" + harness.NodeTypeValue})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("no kwok node (err %v)", err)
	}
	node, nodeUID := nodes.Items[0].Name, nodes.Items[0].UID
	_, err = e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rbacTestNS}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", rbacTestNS, err)
	}
	t.Cleanup(func() {
		_ = e.client.CoreV1().Namespaces().Delete(context.Background(), rbacTestNS, metav1.DeleteOptions{})
	})
	pod, err := e.client.CoreV1().Pods(rbacTestNS).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: rbacTestPod, Labels: map[string]string{"app": "rbac-e2e"}},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"edgewarden.io/rbac-e2e": "no-such-node"},
			Containers:                    []corev1.Container{{Name: "c", Image: "rbac-e2e:never-pulled"}},
			TerminationGracePeriodSeconds: rbacPtr[int64](0),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	t.Cleanup(func() {
		_ = e.client.CoreV1().Pods(rbacTestNS).Delete(context.Background(), rbacTestPod, metav1.DeleteOptions{GracePeriodSeconds: rbacPtr[int64](0)})
	})

	t.Run("RulesAreExactly", func(t *testing.T) {
		// SelfSubjectRulesReview as the agent: everything it may do on
		// resources, apart from the self-reviews every authenticated user
		// has (system:basic-user), is exactly k8s/base/rbac.yaml.
		for _, tc := range []struct {
			namespace string
			want      []string
		}{
			{rbacTestNS, rbacWantRules},
			{"default", rbacWantRules},
			{rbacAgentNS, append(slices.Clone(rbacWantRules), rbacWantLeaseRules...)},
			{"kube-node-lease", append(slices.Clone(rbacWantRules),
				"coordination.k8s.io/leases:list", "coordination.k8s.io/leases:watch")},
		} {
			r, err := agent.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: tc.namespace},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SelfSubjectRulesReview in %s: %v", tc.namespace, err)
			}
			if r.Status.Incomplete {
				t.Logf("namespace %s: rules review incomplete: %s", tc.namespace, r.Status.EvaluationError)
			}
			var got []string
			for _, rule := range r.Status.ResourceRules {
				for _, g := range rule.APIGroups {
					if g == "authorization.k8s.io" || g == "authentication.k8s.io" {
						continue // selfsubject*reviews: system:basic-user
					}
					for _, res := range rule.Resources {
						for _, v := range rule.Verbs {
							s := g + "/" + res + ":" + v
							if len(rule.ResourceNames) > 0 {
								s += " names=" + strings.Join(rule.ResourceNames, ",")
							}
							got = append(got, s)
						}
					}
				}
			}
			slices.Sort(got)
			got = slices.Compact(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("namespace %s: the agent may\n  %v\nwant exactly\n  %v", tc.namespace, got, want)
			}
		}
	})

	t.Run("Allowed", func(t *testing.T) {
		ok := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Errorf("%s as the agent: %v", what, err)
			} else {
				t.Logf("allowed: %s", what)
			}
		}
		sel := "metadata.name=" + node

		// Own node: get, field-selected list and watch.
		_, err := agent.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		ok("get node "+node, err)
		nl, err := agent.CoreV1().Nodes().List(ctx, metav1.ListOptions{FieldSelector: sel})
		ok("list nodes ?fieldSelector="+sel, err)
		if err == nil && len(nl.Items) != 1 {
			t.Errorf("list nodes ?fieldSelector=%s: %d items, want 1", sel, len(nl.Items))
		}
		ok("watch nodes ?fieldSelector="+sel, rbacWatchOne(ctx, func(ctx context.Context) (watch.Interface, error) {
			return agent.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: sel})
		}))

		// Pods on the node (field selector over all namespaces), and one pod.
		_, err = agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node, LabelSelector: "app=sqledge"})
		ok("list pods ?fieldSelector=spec.nodeName="+node, err)
		w, err := agent.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node, AllowWatchBookmarks: true})
		ok("watch pods ?fieldSelector=spec.nodeName="+node, err)
		if err == nil {
			w.Stop()
		}
		ok("watch pods ?fieldSelector=metadata.name="+rbacTestPod, rbacWatchOne(ctx, func(ctx context.Context) (watch.Interface, error) {
			return agent.CoreV1().Pods(rbacTestNS).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + rbacTestPod})
		}))

		// The remediator (docs/node-loss.md): every node, the SQL pods of
		// every namespace, the kubelet Leases, the agents' Leases; and the
		// force deletion of a pod (dry run).
		_, err = agent.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		ok("list nodes (all)", err)
		_, err = agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app=sqledge"})
		ok("list pods ?labelSelector=app=sqledge (all namespaces)", err)
		_, err = agent.CoordinationV1().Leases("kube-node-lease").List(ctx, metav1.ListOptions{})
		ok("list Leases in kube-node-lease", err)
		ok("watch Leases in kube-node-lease", rbacWatchOne(ctx, func(ctx context.Context) (watch.Interface, error) {
			return agent.CoordinationV1().Leases("kube-node-lease").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + node})
		}))
		_, err = agent.CoordinationV1().Leases(rbacAgentNS).List(ctx, metav1.ListOptions{LabelSelector: "edgewarden.io/lease=heartbeat"})
		ok("list Leases in "+rbacAgentNS+" ?labelSelector=edgewarden.io/lease=heartbeat", err)
		if tp, err := e.client.CoreV1().Pods(rbacTestNS).Get(ctx, rbacTestPod, metav1.GetOptions{}); err == nil {
			ok("force-delete pod "+rbacTestPod+" with a UID precondition (dry run)",
				agent.CoreV1().Pods(rbacTestNS).Delete(ctx, rbacTestPod, metav1.DeleteOptions{
					DryRun: dryRun, GracePeriodSeconds: rbacPtr[int64](0),
					Preconditions: &metav1.Preconditions{UID: &tp.UID},
				}))
		}
		_, err = agent.CoreV1().Pods(rbacTestNS).Get(ctx, rbacTestPod, metav1.GetOptions{})
		ok("get pod "+rbacTestNS+"/"+rbacTestPod, err)

		// Node condition: strategic merge on nodes/status (real; removed after).
		t.Cleanup(func() {
			body := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"$patch":"delete"}]}}`, harness.NodeCondition)
			_, _ = e.client.CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, []byte(body), metav1.PatchOptions{}, "status")
		})
		body, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{
			"type": harness.NodeCondition, "status": "False", "reason": "RBACTest",
			"message": "set by the e2e RBAC test as the agent", "lastHeartbeatTime": metav1.Now(), "lastTransitionTime": metav1.Now(),
		}}}})
		n, err := agent.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
		ok("patch nodes/"+node+"/status (strategic merge, condition "+harness.NodeCondition+")", err)
		if err == nil && !slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == harness.NodeCondition && c.Status == corev1.ConditionFalse
		}) {
			t.Errorf("node condition %s not in the patched node", harness.NodeCondition)
		}

		// Taint and cordon: merge patch with resourceVersion, dry run.
		if n, err = agent.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
			taints := append(slices.Clone(n.Spec.Taints), corev1.Taint{Key: harness.Taint, Effect: corev1.TaintEffectNoSchedule})
			body, _ = json.Marshal(map[string]any{
				"metadata": map[string]any{"resourceVersion": n.ResourceVersion},
				"spec":     map[string]any{"taints": taints},
			})
			_, err = agent.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, body, metav1.PatchOptions{DryRun: dryRun})
			ok("patch node "+node+" spec.taints (merge patch, resourceVersion, dry run)", err)
		}
		_, err = agent.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{DryRun: dryRun})
		ok("patch node "+node+" spec.unschedulable (cordon, dry run)", err)

		// Readiness gate condition: strategic merge on pods/status (real).
		body, _ = json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{
			"type": harness.ReadinessGate, "status": "False", "reason": "RBACTest",
			"message": "set by the e2e RBAC test as the agent", "lastTransitionTime": metav1.Now(),
		}}}})
		p, err := agent.CoreV1().Pods(rbacTestNS).Patch(ctx, rbacTestPod, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
		ok("patch pods/"+rbacTestPod+"/status (strategic merge, condition "+harness.ReadinessGate+")", err)
		if err == nil && !slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
			return c.Type == harness.ReadinessGate && c.Status == corev1.ConditionFalse
		}) {
			t.Errorf("pod condition %s not in the patched pod", harness.ReadinessGate)
		}

		// Eviction (optional step), dry run.
		err = agent.PolicyV1().Evictions(rbacTestNS).Evict(ctx, &policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Name: rbacTestPod, Namespace: rbacTestNS},
			DeleteOptions: &metav1.DeleteOptions{DryRun: dryRun},
		})
		ok("create pods/"+rbacTestPod+"/eviction (dry run)", err)

		// Events: one about the node (in "default") and one about the pod,
		// then a patch of the first (a repeated Event's series).
		for _, ev := range []struct {
			ns  string
			ref corev1.ObjectReference
		}{
			{"default", corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node, UID: nodeUID}},
			{rbacTestNS, corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: rbacTestNS, Name: rbacTestPod, UID: pod.UID}},
		} {
			created, err := agent.EventsV1().Events(ev.ns).Create(ctx, &eventsv1.Event{
				ObjectMeta:          metav1.ObjectMeta{GenerateName: "edgewarden-" + node + "-", Namespace: ev.ns},
				EventTime:           metav1.NowMicro(),
				ReportingController: "edgewarden.io/agent",
				ReportingInstance:   "edgewarden-" + node,
				Action:              "Probe",
				Reason:              "RBACTest",
				Note:                "e2e RBAC test, as the agent",
				Type:                corev1.EventTypeNormal,
				Regarding:           ev.ref,
			}, metav1.CreateOptions{})
			ok("create events.k8s.io/v1 Event in "+ev.ns+" about "+ev.ref.Kind+" "+ev.ref.Name, err)
			if err != nil {
				continue
			}
			t.Cleanup(func() {
				_ = e.client.EventsV1().Events(created.Namespace).Delete(context.Background(), created.Name, metav1.DeleteOptions{})
			})
			series, _ := json.Marshal(map[string]any{"series": map[string]any{"count": 2, "lastObservedTime": metav1.NowMicro()}})
			_, err = agent.EventsV1().Events(ev.ns).Patch(ctx, created.Name, types.MergePatchType, series, metav1.PatchOptions{})
			ok("patch events.k8s.io/v1 Event "+ev.ns+"/"+created.Name+" (series)", err)
		}

		// Heartbeat Lease in the agent's namespace: create, get, update.
		leases := agent.CoordinationV1().Leases(rbacAgentNS)
		t.Cleanup(func() {
			_ = e.client.CoordinationV1().Leases(rbacAgentNS).Delete(context.Background(), rbacTestLease, metav1.DeleteOptions{})
		})
		now := metav1.NowMicro()
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: rbacTestLease, Namespace: rbacAgentNS},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: rbacPtr(node), LeaseDurationSeconds: rbacPtr[int32](40),
				AcquireTime: &now, RenewTime: &now,
			},
		}, metav1.CreateOptions{})
		ok("create Lease "+rbacAgentNS+"/"+rbacTestLease, err)
		l, err := leases.Get(ctx, rbacTestLease, metav1.GetOptions{})
		ok("get Lease "+rbacAgentNS+"/"+rbacTestLease, err)
		if err == nil {
			renew := metav1.NewMicroTime(time.Now())
			l.Spec.RenewTime = &renew
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			ok("update Lease "+rbacAgentNS+"/"+rbacTestLease+" (with resourceVersion)", err)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		refused := func(what string, err error) {
			t.Helper()
			switch {
			case apierrors.IsForbidden(err):
				t.Logf("refused (403): %s", what)
			case err == nil:
				t.Errorf("%s as the agent: allowed, want 403 Forbidden", what)
			default:
				t.Errorf("%s as the agent: %v, want 403 Forbidden", what, err)
			}
		}
		refused("delete node "+node+" (dry run)", agent.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{DryRun: dryRun}))
		if n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
			_, err = agent.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{DryRun: dryRun})
			refused("update (PUT) node "+node+" (dry run)", err)
		}
		_, err := agent.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
		refused("list secrets in all namespaces", err)
		_, err = agent.CoreV1().Secrets(rbacAgentNS).List(ctx, metav1.ListOptions{})
		refused("list secrets in "+rbacAgentNS, err)
		_, err = agent.CoreV1().ConfigMaps(rbacAgentNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rbac-e2e"}}, metav1.CreateOptions{DryRun: dryRun})
		refused("create configmap in "+rbacAgentNS+" (dry run)", err)

		now := metav1.NowMicro()
		t.Cleanup(func() {
			_ = e.client.CoordinationV1().Leases("default").Delete(context.Background(), rbacTestLease, metav1.DeleteOptions{})
		})
		_, err = agent.CoordinationV1().Leases("default").Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: rbacTestLease, Namespace: "default"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: rbacPtr(node), RenewTime: &now},
		}, metav1.CreateOptions{})
		refused("create Lease in namespace default", err)
		_, err = agent.CoordinationV1().Leases("default").List(ctx, metav1.ListOptions{})
		refused("list Leases in namespace default", err)
		_, err = agent.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
		refused("get a kubelet Lease (list and watch only)", err)
		refused("delete Lease "+rbacAgentNS+"/"+rbacTestLease+" (dry run)",
			agent.CoordinationV1().Leases(rbacAgentNS).Delete(ctx, rbacTestLease, metav1.DeleteOptions{DryRun: dryRun}))

		_, err = agent.AppsV1().Deployments(rbacTestNS).Patch(ctx, "sqledge", types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{DryRun: dryRun})
		refused("patch deployment "+rbacTestNS+"/sqledge (dry run)", err)
		_, err = agent.CoreV1().Pods(rbacTestNS).Patch(ctx, rbacTestPod, types.MergePatchType, []byte(`{"metadata":{"labels":{"rbac":"x"}}}`), metav1.PatchOptions{DryRun: dryRun})
		refused("patch pod "+rbacTestPod+" (not its status; dry run)", err)
		refused("delete pods collection in "+rbacTestNS+" (dry run)",
			agent.CoreV1().Pods(rbacTestNS).DeleteCollection(ctx, metav1.DeleteOptions{DryRun: dryRun}, metav1.ListOptions{}))
		_, err = agent.CoreV1().Pods(rbacTestNS).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "rbac-e2e-create"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "rbac-e2e:never-pulled"}}},
		}, metav1.CreateOptions{DryRun: dryRun})
		refused("create pod (dry run)", err)
		_, err = agent.CoreV1().Events(rbacTestNS).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: "rbac-e2e-"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: rbacTestNS, Name: rbacTestPod},
			Reason:         "RBACTest",
		}, metav1.CreateOptions{DryRun: dryRun})
		refused("create core/v1 Event (only events.k8s.io is granted; dry run)", err)
	})
}

// rbacWatchOne opens a watch and waits for its first event (the synthetic
// ADDED of an existing object).
func rbacWatchOne(ctx context.Context, open func(context.Context) (watch.Interface, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	w, err := open(ctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			return fmt.Errorf("watch closed without an event")
		}
		if ev.Type == watch.Error {
			return apierrors.FromObject(ev.Object)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no event within 15s: %w", ctx.Err())
	}
}

func rbacPtr[T any](v T) *T { return &v }
