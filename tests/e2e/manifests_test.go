// The Kubernetes manifests (k8s/base, k8s/monitoring, k8s/overlays/*) against
// the real local API server, with kubectl built from the pinned Kubernetes
// module (scripts/e2e-build): every kustomization renders; the agent's config
// in the ConfigMap passes `edgewarden check-config`; the alert rules pass
// `promtool check rules` and their unit tests; the dashboard and the rules
// query only metrics docs/metrics.md lists; every overlay passes a
// server-side dry run (the monitoring one after the Prometheus Operator's
// CRDs are installed from the Go module cache); the base is applied for real
// and its DaemonSet rolls out on the kwok nodes and rolls over one node at a
// time; and the node-restriction policies let a node-bound agent token change
// its own node and pods only, which a real agent's ladder then goes through.
// docs/kubernetes-install.md.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"edgewarden.io/e2e/internal/harness"
)

const (
	// The Prometheus Operator release whose CRDs (PodMonitor, PrometheusRule)
	// the monitoring overlay is dry-run against. Taken from the Go module
	// proxy into the module cache (never copied into this repository); the
	// module's hash is checked.
	mfPromOperatorModule = "github.com/prometheus-operator/prometheus-operator"
	mfPromOperatorVer    = "v0.85.0"
	mfPromOperatorSum    = "h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="

	mfAgentSelector = "app=sqledge"
	mfPriorityNode  = 2000001000 // system-node-critical
)

// mfKubectl is tests/e2e/.bin/current/kubectl (scripts/e2e-build), or $E2E_KUBECTL.
func mfKubectl(t *testing.T) string {
	t.Helper()
	k := os.Getenv("E2E_KUBECTL")
	if k == "" {
		k = filepath.Join(repoRoot(), "tests", "e2e", ".bin", "current", "kubectl")
	}
	if _, err := os.Stat(k); err != nil {
		t.Fatalf("kubectl not found (%v): run scripts/e2e-build, which builds it from the pinned k8s.io/kubernetes module", err)
	}
	return k
}

// mfRun runs kubectl against the test cluster (admin) and returns stdout;
// a failure carries stderr.
func (e *env) mfRun(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mfKubectl(e.t), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+os.Getenv("E2E_KUBECONFIG"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (e *env) mfKubectlOK(stdin []byte, args ...string) string {
	e.t.Helper()
	out, err := e.mfRun(stdin, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// mfRender is `kubectl kustomize DIR` (DIR relative to the repository).
func (e *env) mfRender(dir string) []byte {
	e.t.Helper()
	return []byte(e.mfKubectlOK(nil, "kustomize", filepath.Join(repoRoot(), dir)))
}

// mfDocs splits multi-document YAML into objects.
func mfDocs(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&obj.Object); err != nil {
			t.Fatal(err)
		}
		if len(obj.Object) > 0 {
			out = append(out, obj)
		}
	}
}

func mfFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the rendered manifests", kind, name)
	return nil
}

func mfConvert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}

// mfOverlays lists k8s/overlays/*.
func mfOverlays(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(repoRoot(), "k8s", "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		if d.IsDir() {
			out = append(out, d.Name())
		}
	}
	return out
}

// mfHostless: an image reference without a registry host (the first path
// component has no '.' or ':' and is not localhost).
func mfHostless(image string) bool {
	first, _, found := strings.Cut(image, "/")
	if !found {
		return true
	}
	return !strings.ContainsAny(first, ".:") && first != "localhost"
}

// mfTolerates: does the toleration let a pod stay under the taint (key, effect)?
func mfTolerates(tol corev1.Toleration, key string, effect corev1.TaintEffect) bool {
	if tol.Effect != "" && tol.Effect != effect {
		return false
	}
	if tol.Key == "" {
		return tol.Operator == corev1.TolerationOpExists
	}
	return tol.Key == key
}

func mfAgentBinary(t *testing.T) string {
	t.Helper()
	for _, b := range []string{os.Getenv("E2E_AGENT_BIN"), filepath.Join(repoRoot(), "build", "edgewarden")} {
		if b == "" {
			continue
		}
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	t.Fatalf("no edgewarden binary (E2E_AGENT_BIN, build/edgewarden): build it with scripts/build")
	return ""
}

// Every kustomization renders with the pinned kubectl; the objects have the
// properties docs/kubernetes-install.md promises.
func TestManifestsRender(t *testing.T) {
	e := newEnv(t)
	dirs := []string{"k8s/base", "k8s/monitoring"}
	for _, o := range mfOverlays(t) {
		dirs = append(dirs, "k8s/overlays/"+o)
	}
	for _, d := range dirs {
		objs := mfDocs(t, e.mfRender(d))
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o.GetKind()+"/"+o.GetName())
			for _, img := range mfImages(o) {
				if !mfHostless(img) {
					t.Errorf("%s: %s %s: image %q names a registry host; images are host-less (set yours with kustomize images:)", d, o.GetKind(), o.GetName(), img)
				}
			}
		}
		t.Logf("%s: %d objects: %s", d, len(objs), strings.Join(kinds, " "))
	}
	for _, want := range []string{"monitoring", "example-sqledge", "node-restriction"} {
		if !slices.Contains(mfOverlays(t), want) {
			t.Errorf("overlay k8s/overlays/%s missing", want)
		}
	}

	base := mfDocs(t, e.mfRender("k8s/base"))
	var kinds []string
	for _, o := range base {
		kinds = append(kinds, o.GetKind())
	}
	slices.Sort(kinds)
	// Two Roles and bindings: the agent's namespace, and kube-node-lease (read
	// the kubelets' Leases, for the remediator).
	if want := []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Namespace", "Role", "Role", "RoleBinding", "RoleBinding", "ServiceAccount"}; !slices.Equal(kinds, want) {
		t.Errorf("k8s/base renders %v, want %v", kinds, want)
	}
	ds := mfConvert[appsv1.DaemonSet](t, mfFind(t, base, "DaemonSet", "edgewarden"))
	mfCheckDaemonSet(t, ds)

	ex := mfDocs(t, e.mfRender("k8s/overlays/example-sqledge"))
	dep := mfConvert[appsv1.Deployment](t, mfFind(t, ex, "Deployment", "sqledge"))
	mfCheckSQLDeployment(t, dep)
	pvc := mfConvert[corev1.PersistentVolumeClaim](t, mfFind(t, ex, "PersistentVolumeClaim", "sqledge-data"))
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("example claim access modes %v, want [ReadWriteOnce]", pvc.Spec.AccessModes)
	}
	mfFind(t, ex, "Secret", "mssql-sa")
	mfFind(t, ex, "Service", "sqledge")
}

func mfImages(o *unstructured.Unstructured) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && k == "image" {
					out = append(out, s)
				} else {
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(o.Object)
	return out
}

func mfCheckDaemonSet(t *testing.T, ds *appsv1.DaemonSet) {
	t.Helper()
	errorf := func(format string, args ...any) { t.Helper(); t.Errorf("DaemonSet: "+format, args...) }
	s := ds.Spec.Template.Spec
	if !s.HostPID {
		errorf("hostPID is not true")
	}
	if s.PriorityClassName != "system-node-critical" {
		errorf("priorityClassName %q", s.PriorityClassName)
	}
	if s.ServiceAccountName != "edgewarden" || s.AutomountServiceAccountToken == nil || !*s.AutomountServiceAccountToken {
		errorf("serviceAccountName %q, automount %v", s.ServiceAccountName, s.AutomountServiceAccountToken)
	}
	for _, eff := range []corev1.TaintEffect{corev1.TaintEffectNoExecute, corev1.TaintEffectNoSchedule} {
		for _, key := range []string{harness.Taint, "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "e2e.edgewarden.io/any-other-taint"} {
			if !slices.ContainsFunc(s.Tolerations, func(tol corev1.Toleration) bool {
				return mfTolerates(tol, key, eff) && tol.TolerationSeconds == nil
			}) {
				errorf("does not tolerate %s:%s for ever", key, eff)
			}
		}
	}
	if u := ds.Spec.UpdateStrategy; u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxUnavailable.IntValue() != 1 ||
		(u.RollingUpdate.MaxSurge != nil && u.RollingUpdate.MaxSurge.IntValue() != 0) {
		errorf("updateStrategy %+v, want RollingUpdate maxUnavailable 1 maxSurge 0", u)
	}
	if s.SecurityContext == nil || s.SecurityContext.RunAsNonRoot == nil || !*s.SecurityContext.RunAsNonRoot {
		errorf("pod securityContext does not require a non-root user")
	}
	if len(s.Containers) != 1 {
		t.Fatalf("DaemonSet: %d containers, want 1", len(s.Containers))
	}
	c := s.Containers[0]
	if c.Image != "edgewarden:0.1.0" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		errorf("image %q pull %q", c.Image, c.ImagePullPolicy)
	}
	if !slices.ContainsFunc(c.Env, func(v corev1.EnvVar) bool {
		return v.Name == "NODE_NAME" && v.ValueFrom != nil && v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		errorf("no NODE_NAME from spec.nodeName")
	}
	port := ""
	for _, p := range c.Ports {
		if p.ContainerPort == 9808 {
			port = p.Name
		}
	}
	if port == "" {
		errorf("no container port 9808")
	}
	for what, pr := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != what || (pr.HTTPGet.Port.String() != port && pr.HTTPGet.Port.IntValue() != 9808) {
			errorf("probe %s missing or not on port 9808: %+v", what, pr)
		}
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		errorf("container has no securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		errorf("root filesystem not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		errorf("allowPrivilegeEscalation not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		errorf("capabilities %+v, want drop [ALL], add none", sc.Capabilities)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			errorf("no %s limit", r)
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range s.Volumes {
			if v.Name == m.Name && m.MountPath == "/etc/edgewarden" && v.ConfigMap != nil && v.ConfigMap.Name == "edgewarden-config" {
				mounted = true
			}
		}
	}
	if !mounted {
		errorf("ConfigMap edgewarden-config not mounted at /etc/edgewarden")
	}
	if !slices.Equal(c.Args, []string{"run", "--config", "/etc/edgewarden/config.yaml"}) {
		errorf("args %v", c.Args)
	}
}

func mfCheckSQLDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	errorf := func(format string, args ...any) { t.Helper(); t.Errorf("example Deployment: "+format, args...) }
	s := d.Spec.Template.Spec
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		errorf("replicas %v strategy %q, want 1 and Recreate", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	k, v, _ := strings.Cut(mfAgentSelector, "=")
	if d.Spec.Template.Labels[k] != v {
		errorf("pod labels %v do not match the agent's selector %s", d.Spec.Template.Labels, mfAgentSelector)
	}
	if !slices.ContainsFunc(s.ReadinessGates, func(g corev1.PodReadinessGate) bool { return string(g.ConditionType) == harness.ReadinessGate }) {
		errorf("no readiness gate %s", harness.ReadinessGate)
	}
	for _, tol := range s.Tolerations {
		for _, eff := range []corev1.TaintEffect{corev1.TaintEffectNoExecute, corev1.TaintEffectNoSchedule} {
			if mfTolerates(tol, harness.Taint, eff) {
				errorf("toleration %+v lets the pod stay under edgewarden's %s taint: it must be evicted", tol, eff)
			}
		}
	}
	for _, key := range []string{"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"} {
		if !slices.ContainsFunc(s.Tolerations, func(tol corev1.Toleration) bool {
			return tol.Key == key && tol.Effect == corev1.TaintEffectNoExecute && tol.TolerationSeconds != nil && *tol.TolerationSeconds <= 60
		}) {
			errorf("no shortened (<= 60 s) toleration for %s", key)
		}
	}
	c := s.Containers[0]
	for what, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if pr == nil || pr.TCPSocket == nil {
			errorf("no tcpSocket %s probe", what)
		}
	}
	env := map[string]corev1.EnvVar{}
	for _, v := range c.Env {
		env[v.Name] = v
	}
	if env["ACCEPT_EULA"].Value != "Y" {
		errorf("ACCEPT_EULA not set")
	}
	if p := env["MSSQL_SA_PASSWORD"].ValueFrom; p == nil || p.SecretKeyRef == nil || p.SecretKeyRef.Name != "mssql-sa" {
		errorf("MSSQL_SA_PASSWORD not from the Secret mssql-sa")
	}
	if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
		errorf("no memory request")
	}
}

// The agent configuration in the base's ConfigMap: check-config passes, and it
// is pod mode with reporting on, on the port the DaemonSet probes.
func TestManifestsAgentConfig(t *testing.T) {
	e := newEnv(t)
	base := mfDocs(t, e.mfRender("k8s/base"))
	cm := mfConvert[corev1.ConfigMap](t, mfFind(t, base, "ConfigMap", "edgewarden-config"))
	cfg, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap edgewarden-config has no config.yaml (keys %v)", slices.Sorted(maps.Keys(cm.Data)))
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mfAgentBinary(t), "check-config", path).CombinedOutput()
	if err != nil {
		t.Fatalf("edgewarden check-config of the ConfigMap's config.yaml: %v\n%s", err, out)
	}
	t.Logf("check-config: %s", strings.TrimSpace(string(out)))

	var c struct {
		Server     struct{ Listen string }
		Kubernetes struct {
			Enabled   bool
			Namespace string
			Pods      struct{ Selector string }
		}
	}
	if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(cfg), 4096).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if !c.Kubernetes.Enabled || c.Kubernetes.Pods.Selector != mfAgentSelector {
		t.Errorf("config: kubernetes.enabled %v, pods.selector %q; want pod mode with %s", c.Kubernetes.Enabled, c.Kubernetes.Pods.Selector, mfAgentSelector)
	}
	if !strings.HasSuffix(c.Server.Listen, ":9808") {
		t.Errorf("config: server.listen %q, the DaemonSet probes port 9808", c.Server.Listen)
	}
}

// docs/metrics.md: metric name -> type.
func mfDocMetrics(t *testing.T) map[string]string {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	re := regexp.MustCompile("^\\| `(edgewarden_[a-z0-9_]+)` \\| (\\w+) \\|")
	for _, l := range strings.Split(string(md), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			out[m[1]] = m[2]
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d metrics found in docs/metrics.md", len(out))
	}
	return out
}

var (
	mfSelectorRe = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{`)
	mfEdgeRe     = regexp.MustCompile(`\bedgewarden_[a-z0-9_]+`)
)

// mfCheckMetrics: every metric an expression selects is in docs/metrics.md
// (histograms by their _bucket, _count, _sum series) or in allowed.
func mfCheckMetrics(t *testing.T, where, expr string, doc map[string]string, allowed ...string) {
	t.Helper()
	names := map[string]bool{}
	for _, m := range mfSelectorRe.FindAllStringSubmatch(expr, -1) {
		names[m[1]] = true
	}
	for _, m := range mfEdgeRe.FindAllString(expr, -1) {
		names[m] = true
	}
	for n := range names {
		if slices.Contains(allowed, n) {
			continue
		}
		if _, ok := doc[n]; ok {
			continue
		}
		ok := false
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if b, cut := strings.CutSuffix(n, suf); cut && doc[b] == "histogram" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s queries %s, which docs/metrics.md does not list (expression: %s)", where, n, expr)
		}
	}
}

// mfSlug is GitHub's anchor for a Markdown heading.
func mfSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// The monitoring: rules pass promtool (check and unit tests), point at
// runbooks that exist and query documented metrics; the dashboard is valid
// JSON over documented metrics and ships as the sidecar's ConfigMap; with the
// Prometheus Operator's CRDs installed from the module cache, the overlay
// passes a server-side dry run.
func TestManifestsMonitoring(t *testing.T) {
	e := newEnv(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus): %v", err)
	}
	doc := mfDocMetrics(t)
	objs := mfDocs(t, e.mfRender("k8s/overlays/monitoring"))

	// Rules.
	pr := mfFind(t, objs, "PrometheusRule", "edgewarden")
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	rules, err := json.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", filepath.Join(dir, "rules.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("promtool check rules: %s", strings.Join(strings.Fields(string(out)), " "))
	unit, err := os.ReadFile(filepath.Join(repoRoot(), "k8s", "monitoring", "prometheusrule_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(promtool, "test", "rules", filepath.Join(dir, "rules_test.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules (k8s/monitoring/prometheusrule_test.yaml): %v\n%s", err, out)
	}

	runbooks, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	var alertHeadings []string
	for _, l := range strings.Split(string(runbooks), "\n") {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			anchors[mfSlug(h)] = true
			if strings.HasPrefix(h, "Edgewarden") {
				alertHeadings = append(alertHeadings, h)
			}
		}
	}
	var alerts []string
	for _, g := range groups {
		rs, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rs {
			rule := r.(map[string]any)
			name, _ := rule["alert"].(string)
			expr, _ := rule["expr"].(string)
			mfCheckMetrics(t, "alert "+name, expr, doc, "up", "kube_node_spec_taint")
			if name == "" {
				continue
			}
			alerts = append(alerts, name)
			url, _, _ := unstructured.NestedString(rule, "annotations", "runbook_url")
			anchor, ok := strings.CutPrefix(url, "docs/runbooks.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q is not an anchor of docs/runbooks.md", name, url)
			}
			if anchor != strings.ToLower(name) {
				t.Errorf("alert %s: runbook_url %q, want docs/runbooks.md#%s", name, url, strings.ToLower(name))
			}
			if sev, _, _ := unstructured.NestedString(rule, "labels", "severity"); sev == "" {
				t.Errorf("alert %s has no severity", name)
			}
		}
	}
	slices.Sort(alerts)
	slices.Sort(alertHeadings)
	if !slices.Equal(alerts, alertHeadings) {
		t.Errorf("alerts %v\n docs/runbooks.md has runbooks for %v", alerts, alertHeadings)
	}
	t.Logf("%d alerts, each with its runbook: %v", len(alerts), alerts)

	// Dashboard.
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "k8s", "monitoring", "edgewarden-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID         string
		Title       string
		Panels      []json.RawMessage
		Templating  struct{ List []map[string]any }
		Annotations struct{ List []map[string]any }
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("edgewarden-dashboard.json: %v", err)
	}
	if dec.More() {
		t.Fatalf("edgewarden-dashboard.json: data after the JSON object")
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without uid, title or panels")
	}
	nExpr := 0
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && (k == "expr" || k == "definition") {
					nExpr++
					mfCheckMetrics(t, where, s, doc)
				} else {
					w := where
					if title, ok := x["title"].(string); ok {
						w = "dashboard panel " + title
					}
					walk(w, c)
				}
			}
		case []any:
			for _, c := range x {
				walk(where, c)
			}
		}
	}
	var whole any
	_ = json.Unmarshal(raw, &whole)
	walk("dashboard", whole)
	if nExpr < 15 {
		t.Errorf("dashboard has only %d queries", nExpr)
	}
	for _, want := range []string{"edgewarden_kube_actions_total", "edgewarden_detection_to_action_seconds_bucket",
		"edgewarden_probe_duration_seconds_bucket", "edgewarden_target_state", "edgewarden_kube_requests_total",
		"edgewarden_kube_api_reachable", "edgewarden_kube_watch_restarts_total"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("dashboard does not query %s", want)
		}
	}
	t.Logf("dashboard %q: %d panels, %d queries checked against docs/metrics.md", dash.Title, len(dash.Panels), nExpr)
	cm := mfConvert[corev1.ConfigMap](t, mfFind(t, objs, "ConfigMap", "edgewarden-grafana-dashboard"))
	if cm.Labels["grafana_dashboard"] != "1" || cm.Data["edgewarden-dashboard.json"] != string(raw) {
		t.Errorf("the dashboard ConfigMap lacks the grafana_dashboard label or the dashboard (labels %v)", cm.Labels)
	}

	// The CRDs, from the Prometheus Operator module in the Go module cache.
	crdDir := mfPromOperatorCRDs(t)
	crds := []string{"podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"}
	t.Cleanup(func() {
		_, _ = e.mfRun(nil, "delete", "crd", "--ignore-not-found", "--wait=false", crds[0], crds[1])
	})
	e.mfKubectlOK(nil, "apply", "--server-side", "--field-manager", "e2e-manifests",
		"-f", filepath.Join(crdDir, "monitoring.coreos.com_podmonitors.yaml"),
		"-f", filepath.Join(crdDir, "monitoring.coreos.com_prometheusrules.yaml"))
	// (Not `kubectl wait`: it fails on a CRD whose status has no conditions yet.)
	for _, crd := range crds {
		e.waitFor("CRD "+crd+" Established", 60*time.Second, func() (bool, error) {
			out, err := e.mfRun(nil, "get", "crd", crd, "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
			return err == nil && strings.TrimSpace(out) == "True", nil
		})
	}
	out2 := e.mfKubectlOK(e.mfRender("k8s/overlays/monitoring"), "apply", "--dry-run=server", "-f", "-")
	for _, want := range []string{"podmonitor.monitoring.coreos.com/edgewarden", "prometheusrule.monitoring.coreos.com/edgewarden", "configmap/edgewarden-grafana-dashboard"} {
		if !strings.Contains(out2, want) {
			t.Errorf("dry run of k8s/overlays/monitoring: no %s in\n%s", want, out2)
		}
	}
	t.Logf("server dry run of k8s/overlays/monitoring (CRDs from %s@%s):\n%s", mfPromOperatorModule, mfPromOperatorVer, out2)
}

// mfPromOperatorCRDs downloads (or finds in the module cache) the pinned
// Prometheus Operator module and returns its CRD folder.
func mfPromOperatorCRDs(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", mfPromOperatorModule+"@"+mfPromOperatorVer)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOTOOLCHAIN=local", "GO111MODULE=on")
	out, err := cmd.Output()
	var info struct{ Dir, Sum, Error string }
	_ = json.Unmarshal(out, &info)
	if err != nil || info.Error != "" || info.Dir == "" {
		t.Fatalf("go mod download %s@%s (the Prometheus Operator CRDs come from the Go module proxy): %v %s", mfPromOperatorModule, mfPromOperatorVer, err, info.Error)
	}
	if info.Sum != mfPromOperatorSum {
		t.Fatalf("%s@%s: module hash %s, want %s", mfPromOperatorModule, mfPromOperatorVer, info.Sum, mfPromOperatorSum)
	}
	return filepath.Join(info.Dir, "example", "prometheus-operator-crd")
}

// Every overlay and the base pass a server-side dry run. The example SQL
// workload is rendered into a throwaway namespace: the e2e cluster's own
// sqledge namespace holds a claim of the same name bound to the e2e volume.
func TestManifestsDryRun(t *testing.T) {
	e := newEnv(t)
	dry := func(what string, manifests []byte) string {
		t.Helper()
		out, err := e.mfRun(manifests, "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			t.Errorf("server dry run of %s: %v", what, err)
		}
		t.Logf("server dry run of %s:\n%s", what, strings.TrimSpace(out))
		return out
	}
	dry("k8s/base", e.mfRender("k8s/base"))
	for _, o := range mfOverlays(t) {
		switch o {
		case "monitoring":
			// needs the CRDs: TestManifestsMonitoring
		case "example-sqledge":
			const exNS = "e2e-manifests-example"
			if _, err := e.client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: exNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = e.client.CoreV1().Namespaces().Delete(context.Background(), exNS, metav1.DeleteOptions{})
			})
			dir := t.TempDir()
			rel, err := filepath.Rel(dir, filepath.Join(repoRoot(), "k8s", "overlays", o))
			if err != nil {
				t.Fatal(err)
			}
			k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n  - %s\n", exNS, rel)
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
				t.Fatal(err)
			}
			out := dry("k8s/overlays/"+o+" (namespace "+exNS+")", []byte(e.mfKubectlOK(nil, "kustomize", dir)))
			if !strings.Contains(out, "deployment.apps/sqledge created (server dry run)") {
				t.Errorf("the example Deployment was not dry-run created")
			}
		default:
			dry("k8s/overlays/"+o, e.mfRender("k8s/overlays/"+o))
		}
	}
}

// The base applied for real: the DaemonSet's pods are admitted (priority
// system-node-critical, a bound token) and run on every kwok node (kwok and
// the runtime player play the kubelet; the player starts no stand-in for
// them, they are not app=sqledge); only hostPID keeps the pod from the
// "restricted" Pod Security Standard; a template change rolls over one node
// at a time. The DaemonSet and its ConfigMap are removed at the end (the
// namespace, ServiceAccount and RBAC stay: the harness made them).
func TestManifestsDaemonSetLive(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	nodes, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: harness.NodeTypeLabel + "=" + harness.NodeTypeValue})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("no kwok nodes (%v)", err)
	}
	n := int32(len(nodes.Items))
	dsc := e.client.AppsV1().DaemonSets(agentNS)
	sel := "app.kubernetes.io/name=edgewarden,app.kubernetes.io/component=agent"
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		fg := metav1.DeletePropagationForeground
		_ = dsc.Delete(c, "edgewarden", metav1.DeleteOptions{PropagationPolicy: &fg})
		_ = e.client.CoreV1().ConfigMaps(agentNS).Delete(c, "edgewarden-config", metav1.DeleteOptions{})
		err := harness.Poll(c, func() (bool, error) {
			pl, err := e.client.CoreV1().Pods(agentNS).List(c, metav1.ListOptions{LabelSelector: sel})
			_, derr := dsc.Get(c, "edgewarden", metav1.GetOptions{})
			return err == nil && len(pl.Items) == 0 && apierrors.IsNotFound(derr), nil
		})
		if err != nil {
			t.Errorf("the DaemonSet and its pods were not gone within 90 s: %v", err)
		}
	})
	out := e.mfKubectlOK(nil, "apply", "-k", filepath.Join(repoRoot(), "k8s", "base"))
	t.Logf("kubectl apply -k k8s/base:\n%s", strings.TrimSpace(out))

	waitRolledOut := func(what string, check func(*appsv1.DaemonSet, []corev1.Pod)) {
		t.Helper()
		e.waitFor(what, 120*time.Second, func() (bool, error) {
			ds, err := dsc.Get(ctx, "edgewarden", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			pl, err := e.client.CoreV1().Pods(agentNS).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return false, nil
			}
			if check != nil {
				check(ds, pl.Items)
			}
			st := ds.Status
			return st.ObservedGeneration == ds.Generation && st.DesiredNumberScheduled == n &&
				st.UpdatedNumberScheduled == n && st.NumberAvailable == n && len(pl.Items) == int(n), nil
		})
	}
	t0 := time.Now()
	waitRolledOut(fmt.Sprintf("the DaemonSet available on all %d kwok nodes", n), nil)
	t.Logf("DaemonSet available on %d nodes after %v", n, time.Since(t0).Round(time.Millisecond))

	pl, err := e.client.CoreV1().Pods(agentNS).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range pl.Items {
		perNode[p.Spec.NodeName]++
		if p.Spec.Priority == nil || *p.Spec.Priority != mfPriorityNode {
			t.Errorf("pod %s: priority %v, want %d (system-node-critical)", p.Name, p.Spec.Priority, mfPriorityNode)
		}
		if !slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool {
			return v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil })
		}) {
			t.Errorf("pod %s: no projected service-account token volume", p.Name)
		}
		if podCond(&p, corev1.PodReady) != corev1.ConditionTrue {
			t.Errorf("pod %s on %s not Ready", p.Name, p.Spec.NodeName)
		}
	}
	for _, node := range nodes.Items {
		if perNode[node.Name] != 1 {
			t.Errorf("node %s runs %d agent pods, want 1", node.Name, perNode[node.Name])
		}
	}

	// Pod Security: the pod meets "restricted" but for hostPID.
	const psaNS = "e2e-manifests-psa"
	if _, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: psaNS, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.client.CoreV1().Namespaces().Delete(context.Background(), psaNS, metav1.DeleteOptions{}) })
	ds, err := dsc.Get(ctx, "edgewarden", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the default ServiceAccount of "+psaNS, 30*time.Second, func() (bool, error) {
		_, err := e.client.CoreV1().ServiceAccounts(psaNS).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "psa-probe", Namespace: psaNS}, Spec: *ds.Spec.Template.Spec.DeepCopy()}
	probe.Spec.ServiceAccountName = "default"
	_, err = e.client.CoreV1().Pods(psaNS).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	var violations string
	if err != nil {
		_, violations, _ = strings.Cut(err.Error(), `violates PodSecurity "restricted:latest": `)
	}
	if violations != "host namespaces (hostPID=true)" {
		t.Errorf("the agent's pod against the restricted Pod Security Standard: %v; want exactly the hostPID violation", err)
	} else {
		t.Logf("restricted Pod Security Standard: only %s", violations)
	}

	// Rolling update: one node at a time, never two agents on one node.
	var maxUnavail int32
	maxPerNode := 0
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"e2e.edgewarden.io/rollout":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := dsc.Patch(ctx, "edgewarden", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	waitRolledOut("the rolling update", func(ds *appsv1.DaemonSet, pods []corev1.Pod) {
		maxUnavail = max(maxUnavail, ds.Status.DesiredNumberScheduled-ds.Status.NumberAvailable, ds.Status.NumberUnavailable)
		per := map[string]int{}
		for _, p := range pods {
			per[p.Spec.NodeName]++
			maxPerNode = max(maxPerNode, per[p.Spec.NodeName])
		}
	})
	t.Logf("rolling update over %d nodes in %v: at most %d unavailable, at most %d agent pods on a node", n, time.Since(t0).Round(time.Millisecond), maxUnavail, maxPerNode)
	if maxUnavail > 1 {
		t.Errorf("%d agents unavailable at once during the rolling update, want <= 1 (maxUnavailable 1)", maxUnavail)
	}
	if maxPerNode > 1 {
		t.Errorf("%d agent pods on one node at once during the rolling update, want 1 (maxSurge 0)", maxPerNode)
	}
}

// mfClientFor is a client authenticated by a bearer token only.
func (e *env) mfClientFor(token string) *kubernetes.Clientset {
	e.t.Helper()
	cfg := rest.AnonymousClientConfig(e.cfg)
	cfg.BearerToken = token
	cfg.UserAgent = "e2e-manifests-agent"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// mfBoundToken mints a token of edgewarden/edgewarden bound to a pod or a Node.
func (e *env) mfBoundToken(kind, name string, uid types.UID) string {
	e.t.Helper()
	secs := int64(3600)
	tr, err := e.client.CoreV1().ServiceAccounts(agentNS).CreateToken(e.ctx, "edgewarden", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &secs,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: kind, APIVersion: "v1", Name: name, UID: uid},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("TokenRequest bound to %s %s: %v", kind, name, err)
	}
	return tr.Status.Token
}

var mfPolicies = []string{"edgewarden-node-restriction-nodes", "edgewarden-node-restriction-pods", "edgewarden-node-restriction-events"}

// The node-restriction overlay, live: a token bound to a pod on node A may
// write node A's condition, taint and cordon and the readiness gate of a pod
// on A; node B, a pod on B, other taints, labels, other conditions and other
// nodes' Events are refused with the policy's message; an unbound token is
// refused everything. Then a real agent with a Node-bound token goes through
// its whole ladder under the policies without a single 403.
func TestManifestsNodeRestriction(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	dryRun := []string{metav1.DryRunAll}
	nodes, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: harness.NodeTypeLabel + "=" + harness.NodeTypeValue})
	if err != nil || len(nodes.Items) < 2 {
		t.Fatalf("need 2 kwok nodes (%v)", err)
	}
	sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
	nodeA, nodeB := nodes.Items[0].Name, nodes.Items[1].Name

	// Pods of the edgewarden ServiceAccount on A and B: a token bound to the
	// one on A carries A's name.
	mkPod := func(name, node string) *corev1.Pod {
		p, err := e.client.CoreV1().Pods(agentNS).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e.edgewarden.io/manifests": "true"}},
			Spec: corev1.PodSpec{
				ServiceAccountName: "edgewarden", NodeName: node,
				Containers:                    []corev1.Container{{Name: "c", Image: "e2e-manifests:never-pulled"}},
				TerminationGracePeriodSeconds: rbacPtr[int64](0),
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
		t.Cleanup(func() {
			_ = e.client.CoreV1().Pods(agentNS).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: rbacPtr[int64](0)})
		})
		return p
	}
	podA, podB := mkPod("e2e-nr-on-a", nodeA), mkPod("e2e-nr-on-b", nodeB)
	agentA := e.mfClientFor(e.mfBoundToken("Pod", podA.Name, podA.UID))
	ssr, err := agentA.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ssr.Status.UserInfo.Extra["authentication.kubernetes.io/node-name"]; !slices.Equal(got, []string{nodeA}) {
		t.Fatalf("pod-bound token: node-name claim %v, want [%s] (ServiceAccountTokenPodNodeInfo)", got, nodeA)
	}
	t.Logf("pod-bound token: user %s, node-name %v", ssr.Status.UserInfo.Username, ssr.Status.UserInfo.Extra["authentication.kubernetes.io/node-name"])

	// The unbound token of the harness's agents: how the test sees the
	// policies come and go.
	unbound := mfUnboundAgent(t, e)
	gate := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":"False","reason":"E2ENodeRestriction"}]}}`, harness.ReadinessGate)
	probes := func() (refused int, errs []error) {
		_, err1 := unbound.CoreV1().Nodes().Patch(ctx, nodeA, types.MergePatchType, []byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{DryRun: dryRun})
		_, err2 := unbound.CoreV1().Pods(agentNS).Patch(ctx, podA.Name, types.StrategicMergePatchType, []byte(gate), metav1.PatchOptions{DryRun: dryRun}, "status")
		_, err3 := unbound.EventsV1().Events("default").Create(ctx, mfEvent(nodeA, nodeA), metav1.CreateOptions{DryRun: dryRun})
		for _, err := range []error{err1, err2, err3} {
			if err != nil && strings.Contains(err.Error(), "edgewarden node restriction") {
				refused++
				errs = append(errs, err)
			}
		}
		return
	}
	if r, msgs := probes(); r != 0 {
		t.Fatalf("refused before the policies are applied: %v", msgs)
	}

	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, p := range mfPolicies {
			_ = e.client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(c, p, metav1.DeleteOptions{})
			_ = e.client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(c, p, metav1.DeleteOptions{})
		}
		// The RBAC test and the harness's agents use the unbound token: wait
		// until the API server no longer enforces the policies.
		if err := harness.Poll(c, func() (bool, error) { r, _ := probes(); return r == 0, nil }); err != nil {
			t.Errorf("the node-restriction policies still refuse requests 60 s after their removal: %v", err)
		}
		body := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"$patch":"delete"}]}}`, harness.NodeCondition)
		_, _ = e.client.CoreV1().Nodes().Patch(c, nodeA, types.StrategicMergePatchType, []byte(body), metav1.PatchOptions{}, "status")
	})
	out := e.mfKubectlOK(nil, "apply", "-k", filepath.Join(repoRoot(), "k8s", "overlays", "node-restriction"))
	t.Logf("kubectl apply -k k8s/overlays/node-restriction:\n%s", strings.TrimSpace(out))
	e.waitFor("the policies to be type-checked and enforced", 60*time.Second, func() (bool, error) {
		for _, p := range mfPolicies {
			vap, err := e.client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, p, metav1.GetOptions{})
			if err != nil || vap.Status.ObservedGeneration != vap.Generation {
				return false, nil
			}
			if tc := vap.Status.TypeChecking; tc != nil && len(tc.ExpressionWarnings) > 0 {
				return false, fmt.Errorf("policy %s: type-checking warnings %+v", p, tc.ExpressionWarnings)
			}
		}
		r, _ := probes()
		return r == 3, nil
	})
	_, errs := probes()
	for _, err := range errs {
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "has no node binding") {
			t.Errorf("unbound token: %v; want 403 'has no node binding'", err)
		}
	}
	t.Logf("unbound token refused (node, pod status, Event): %v", errs[0])

	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("agent of %s: %s: %v", nodeA, what, err)
		} else {
			t.Logf("allowed: %s", what)
		}
	}
	refused := func(what, want string, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("agent of %s: %s: allowed, want 403 from the node-restriction policy", nodeA, what)
		case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "edgewarden node restriction") || !strings.Contains(err.Error(), want):
			t.Errorf("agent of %s: %s: %v; want 403 from the policy naming %q", nodeA, what, err, want)
		default:
			t.Logf("refused (403): %s: %s", what, err.Error()[strings.Index(err.Error(), "edgewarden node restriction"):])
		}
	}
	now := metav1.Now()
	nodeCondPatch := func(typ, status string) []byte {
		b, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{
			"type": typ, "status": status, "reason": "E2ENodeRestriction", "message": "e2e node-restriction test",
			"lastHeartbeatTime": now, "lastTransitionTime": now,
		}}}})
		return b
	}
	podCondPatch := func(typ, status string) []byte {
		b, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{
			"type": typ, "status": status, "reason": "E2ENodeRestriction", "message": "e2e node-restriction test",
			"lastTransitionTime": now,
		}}}})
		return b
	}
	taints := func(node string, add ...corev1.Taint) []byte {
		n := e.node(node)
		ts := append(slices.Clone(n.Spec.Taints), add...)
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": n.ResourceVersion}, "spec": map[string]any{"taints": ts}})
		return b
	}
	ours := corev1.Taint{Key: harness.Taint, Effect: corev1.TaintEffectNoSchedule}
	nodesA := agentA.CoreV1().Nodes()

	_, err = nodesA.Patch(ctx, nodeA, types.StrategicMergePatchType, nodeCondPatch(harness.NodeCondition, "False"), metav1.PatchOptions{}, "status")
	ok("patch nodes/"+nodeA+"/status, condition "+harness.NodeCondition, err)
	_, err = nodesA.Patch(ctx, nodeA, types.MergePatchType, taints(nodeA, ours), metav1.PatchOptions{DryRun: dryRun})
	ok("patch node "+nodeA+" spec.taints + "+harness.Taint+" (dry run)", err)
	_, err = nodesA.Patch(ctx, nodeA, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{DryRun: dryRun})
	ok("cordon node "+nodeA+" (dry run)", err)
	_, err = agentA.CoreV1().Pods(agentNS).Patch(ctx, podA.Name, types.StrategicMergePatchType, podCondPatch(harness.ReadinessGate, "False"), metav1.PatchOptions{}, "status")
	ok("patch pods/"+podA.Name+"/status (on "+nodeA+"), condition "+harness.ReadinessGate, err)
	_, err = agentA.EventsV1().Events("default").Create(ctx, mfEvent(nodeA, nodeA), metav1.CreateOptions{DryRun: dryRun})
	ok("create an Event about node "+nodeA+" as edgewarden-"+nodeA+" (dry run)", err)

	_, err = nodesA.Patch(ctx, nodeB, types.StrategicMergePatchType, nodeCondPatch(harness.NodeCondition, "True"), metav1.PatchOptions{}, "status")
	refused("patch nodes/"+nodeB+"/status", "may not modify node "+nodeB, err)
	// The remediator (docs/node-loss.md) may taint another node: out-of-service
	// or edgewarden's NoExecute, nothing else.
	oos := corev1.Taint{Key: "node.kubernetes.io/out-of-service", Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
	_, err = nodesA.Patch(ctx, nodeB, types.MergePatchType, taints(nodeB, corev1.Taint{Key: harness.Taint, Effect: corev1.TaintEffectNoExecute}), metav1.PatchOptions{DryRun: dryRun})
	ok("taint node "+nodeB+" "+harness.Taint+":NoExecute as the remediator (dry run)", err)
	_, err = nodesA.Patch(ctx, nodeB, types.MergePatchType, taints(nodeB, oos), metav1.PatchOptions{DryRun: dryRun})
	ok("taint node "+nodeB+" out-of-service as the remediator (dry run)", err)
	_, err = nodesA.Patch(ctx, nodeB, types.MergePatchType, taints(nodeB, corev1.Taint{Key: "e2e-other", Effect: corev1.TaintEffectNoExecute}), metav1.PatchOptions{DryRun: dryRun})
	refused("taint node "+nodeB+" with a foreign taint (dry run)", "not other taints, labels or annotations", err)
	_, err = nodesA.Patch(ctx, nodeB, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{DryRun: dryRun})
	refused("cordon node "+nodeB+" (dry run)", "may not modify node "+nodeB, err)
	_, err = nodesA.Patch(ctx, nodeA, types.MergePatchType, taints(nodeA, oos), metav1.PatchOptions{DryRun: dryRun})
	refused("taint its own node "+nodeA+" out-of-service (dry run)", "not other taints, labels or annotations", err)
	_, err = nodesA.Patch(ctx, nodeA, types.MergePatchType, []byte(`{"spec":{"taints":[]}}`), metav1.PatchOptions{DryRun: dryRun})
	refused("remove the other taints of "+nodeA+" (dry run)", "not other taints, labels or annotations", err)
	_, err = nodesA.Patch(ctx, nodeA, types.MergePatchType, []byte(`{"metadata":{"labels":{"e2e-nr":"x"}}}`), metav1.PatchOptions{DryRun: dryRun})
	refused("label node "+nodeA+" (dry run)", "not other taints, labels or annotations", err)
	_, err = nodesA.Patch(ctx, nodeA, types.StrategicMergePatchType, nodeCondPatch("Ready", "False"), metav1.PatchOptions{DryRun: dryRun}, "status")
	refused("set condition Ready=False on "+nodeA+" (dry run)", "only the SQLEdgeUnhealthy condition", err)
	_, err = agentA.CoreV1().Pods(agentNS).Patch(ctx, podB.Name, types.StrategicMergePatchType, podCondPatch(harness.ReadinessGate, "False"), metav1.PatchOptions{}, "status")
	refused("patch pods/"+podB.Name+"/status (on "+nodeB+")", "on node "+nodeB, err)
	_, err = agentA.CoreV1().Pods(agentNS).Patch(ctx, podA.Name, types.StrategicMergePatchType, podCondPatch("Ready", "False"), metav1.PatchOptions{DryRun: dryRun}, "status")
	refused("set Ready=False on "+podA.Name+" (dry run)", "only the condition "+harness.ReadinessGate, err)
	_, err = agentA.EventsV1().Events("default").Create(ctx, mfEvent(nodeB, nodeB), metav1.CreateOptions{DryRun: dryRun})
	refused("create an Event as edgewarden-"+nodeB+" (dry run)", "reportingInstance edgewarden-"+nodeA, err)
	_, err = agentA.EventsV1().Events("default").Create(ctx, mfEvent(nodeA, nodeB), metav1.CreateOptions{DryRun: dryRun})
	refused("create an Event about node "+nodeB+" (dry run)", "about its own Node", err)
	remediation := mfEvent(nodeA, nodeB)
	remediation.Action, remediation.Reason = "OutOfService", "OutOfServiceApplied"
	_, err = agentA.EventsV1().Events("default").Create(ctx, remediation, metav1.CreateOptions{DryRun: dryRun})
	ok("create a remediation Event (action OutOfService) about node "+nodeB+" (dry run)", err)

	// A real agent (static mode, its own Node object, the stand-in) whose
	// kubeconfig holds a token bound to its Node, as a bare-metal install
	// with the policies would: the whole ladder, no 403.
	t.Run("RealAgentLadder", func(t *testing.T) {
		e := &env{t: t, ctx: e.ctx, cfg: e.cfg, client: e.client, dir: e.dir}
		if os.Getenv("E2E_AGENT_TEST_BIN") == "" && os.Getenv("E2E_AGENT_BIN") == "" {
			t.Setenv("E2E_AGENT_BIN", mfAgentBinary(t))
		}
		node := e.makeNode("ew-nr")
		n := e.node(node)
		dir := t.TempDir()
		tokFile := filepath.Join(dir, "token")
		if err := os.WriteFile(tokFile, []byte(e.mfBoundToken("Node", node, n.UID)), 0o600); err != nil {
			t.Fatal(err)
		}
		kc := filepath.Join(dir, "kubeconfig")
		ca := e.cfg.CAFile
		if ca == "" {
			ca = filepath.Join(dir, "ca.crt")
			if err := os.WriteFile(ca, e.cfg.CAData, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		kcText := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: edgewarden, user: {tokenFile: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: edgewarden, namespace: %s}}]
current-context: e2e
`, e.cfg.Host, ca, tokFile, agentNS)
		if err := os.WriteFile(kc, []byte(kcText), 0o600); err != nil {
			t.Fatal(err)
		}
		s := e.startStandin()
		a := e.startAgent(agentCfg{node: node, target: s.listen, kubeconfig: kc, relocateAfter: "1s", quarantine: "2s"})
		e.waitNode("condition SQLEdgeUnhealthy=False (healthy)", node, 30*time.Second, condIs(harness.NodeCondition, corev1.ConditionFalse))
		s.do(t, "mode refuse")
		e.waitNode("condition SQLEdgeUnhealthy=True", node, 15*time.Second, condIs(harness.NodeCondition, corev1.ConditionTrue))
		e.waitNode("taint NoExecute", node, 15*time.Second, taintIs("NoExecute"))
		s.do(t, "mode ok")
		e.waitNode("quarantine NoSchedule", node, 15*time.Second, taintIs("NoSchedule"))
		e.waitNode("taint removed after the quarantine", node, 20*time.Second, taintIs(""))
		e.waitFor("the agent's Events", 10*time.Second, func() (bool, error) {
			ev := e.agentEvents("default", node)
			return ev["FailingOver"] > 0 && ev["QuarantineLifted"] > 0, nil
		})
		if v := a.metric("edgewarden_kube_requests_total", `code="403"`); v > 0 {
			t.Errorf("%v of the agent's requests refused (403) under the node-restriction policies", v)
		}
		t.Logf("agent with a Node-bound token: the ladder under the policies, %v requests, none refused; events %v",
			a.metric("edgewarden_kube_requests_total"), e.agentEvents("default", node))
	})
}

// mfUnboundAgent is the agents' identity as the harness made it (a token bound
// to nothing, DIR/agent.kubeconfig).
func mfUnboundAgent(t *testing.T, e *env) *kubernetes.Clientset {
	t.Helper()
	p := filepath.Join(e.dir, "agent.kubeconfig")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no agent kubeconfig %s (scripts/localcluster writes it): %v", p, err)
	}
	c, err := harness.Client(p, "e2e-manifests-unbound")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mfEvent is an Event as the agent of node `instance` writes it about node `about`.
func mfEvent(instance, about string) *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: "edgewarden-" + instance + "-", Namespace: "default"},
		EventTime:           metav1.NowMicro(),
		ReportingController: "edgewarden.io/agent",
		ReportingInstance:   "edgewarden-" + instance,
		Action:              "Probe",
		Reason:              "E2ENodeRestriction",
		Note:                "e2e node-restriction test",
		Type:                corev1.EventTypeNormal,
		Regarding:           corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: about},
	}
}
