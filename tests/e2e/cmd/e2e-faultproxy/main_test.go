package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const upstreamToken = "upstream-secret"

// eventLine is the i-th watch event the fake upstream sends (i < 10: every
// line has the same length).
func eventLine(i int) string {
	return fmt.Sprintf(`{"type":"ADDED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"n%d"}}}`+"\n", i)
}

// echo is what the fake upstream answers to a request that is not a watch.
type echo struct {
	Method        string `json:"method"`
	Path          string `json:"path"`
	Query         string `json:"query"`
	Body          string `json:"body"`
	ContentType   string `json:"contentType"`
	Authorization string `json:"authorization"`
}

// newUpstream starts a TLS API server stand-in: watches get three events and
// then stay open; other requests get their own description back. It writes
// a kubeconfig for it (token auth) and returns its path.
func newUpstream(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+upstreamToken {
			http.Error(w, "upstream: bad credentials", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("watch") != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			for i := range 3 {
				_, _ = io.WriteString(w, eventLine(i))
				w.(http.Flusher).Flush()
			}
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{r.Method, r.URL.Path, r.URL.RawQuery, string(body),
			r.Header.Get("Content-Type"), r.Header.Get("Authorization")})
	}))
	t.Cleanup(func() { close(stop); srv.Close() })

	dir := t.TempDir()
	ca := filepath.Join(dir, "upstream-ca.crt")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	kc := filepath.Join(dir, "upstream.kubeconfig")
	writeFile(t, kc, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: up
  cluster: {server: %q, certificate-authority: %q}
users:
- name: up
  user: {token: %q}
contexts:
- name: up
  context: {cluster: up, user: up}
current-context: up
`, srv.URL, ca, upstreamToken))
	return kc
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startProxy starts a proxy in front of a fresh upstream.
func startProxy(t *testing.T) *server {
	t.Helper()
	s, err := start(options{
		upstreamKubeconfig: newUpstream(t),
		listen:             "127.0.0.1:0",
		control:            "127.0.0.1:0",
		outDir:             t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// client talks to the proxy as the agent would: trusting DIR/ca.crt,
// presenting a bearer token, one fresh connection pool per client.
type client struct {
	t     *testing.T
	hc    *http.Client
	base  string
	token string
}

func newClient(t *testing.T, s *server) *client {
	t.Helper()
	dir := filepath.Dir(s.kubeconfig)
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	token, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}, base: s.proxyURL,
		token: strings.TrimSpace(string(token))}
}

func (c *client) do(method, path, body string) (*http.Response, error) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	return c.hc.Do(req)
}

// must does a request that has to get an answer; it returns status and body.
func (c *client) must(method, path, body string) (int, string) {
	c.t.Helper()
	resp, err := c.do(method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// ctl calls the control API and decodes a JSON answer into out (if not nil).
func ctl(t *testing.T, s *server, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.controlURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("control %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("control %s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func setFaults(t *testing.T, s *server, rules string) {
	t.Helper()
	if code := ctl(t, s, "POST", "/faults", rules, nil); code != http.StatusOK {
		t.Fatalf("POST /faults %s: status %d", rules, code)
	}
}

func requests(t *testing.T, s *server) snapshot {
	t.Helper()
	var snap snapshot
	ctl(t, s, "GET", "/requests", "", &snap)
	return snap
}

// settledRequests waits until no request is in flight (a client can see a
// cut before the proxy's handler has returned) and returns the snapshot.
func settledRequests(t *testing.T, s *server) snapshot {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		snap := requests(t, s)
		if !slices.ContainsFunc(snap.Requests, func(r Record) bool { return r.InFlight }) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still in flight: %+v", snap.Requests)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStatus checks a meta/v1 Status body.
func checkStatus(t *testing.T, body string, code int, reason string) {
	t.Helper()
	var st struct {
		Kind, APIVersion, Status, Reason string
		Code                             int
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("not a Status: %v: %s", err, body)
	}
	if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != "Failure" || st.Code != code || st.Reason != reason {
		t.Fatalf("Status body %s, want code %d reason %s", body, code, reason)
	}
}

func TestRunReadyLineKubeconfigAndParentExit(t *testing.T) {
	parent := exec.Command("sleep", "2")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = parent.Wait() }() // reaped, so the pid is gone once it exits
	dir := t.TempDir()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"--upstream-kubeconfig", newUpstream(t),
			"--out-dir", dir, "--parent-pid", fmt.Sprint(parent.Process.Pid)}, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v (run: %v)", err, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	re := regexp.MustCompile(`^ready proxy=https://127\.0\.0\.1:\d+ control=http://127\.0\.0\.1:\d+ kubeconfig=(\S+)\n$`)
	m := re.FindStringSubmatch(line)
	if m == nil || m[1] != filepath.Join(dir, "kubeconfig") {
		t.Fatalf("ready line %q", line)
	}

	// The kubeconfig works as written, for client-go too.
	for _, kc := range []string{"kubeconfig", "kubeconfig-tokenfile"} {
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, kc))
		if err != nil {
			t.Fatal(err)
		}
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(cfg.Host + "/api/v1/nodes")
		if err != nil {
			t.Fatalf("%s: %v", kc, err)
		}
		var e echo
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || e.Authorization != "Bearer "+upstreamToken {
			t.Fatalf("%s: status %d, upstream saw %+v", kc, resp.StatusCode, e)
		}
	}

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its parent exited")
	}
}

func TestListenOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if _, err := listenLoopback(addr); err == nil {
			t.Errorf("listenLoopback(%q) accepted", addr)
		}
	}
}

func TestPassThrough(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)

	code, body := c.must("GET", "/api/v1/nodes?limit=5&labelSelector=type%3Dkwok", "")
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil || code != http.StatusOK {
		t.Fatalf("GET: %d %s", code, body)
	}
	want := echo{Method: "GET", Path: "/api/v1/nodes", Query: "limit=5&labelSelector=type%3Dkwok",
		Authorization: "Bearer " + upstreamToken}
	if e != want {
		t.Fatalf("upstream saw %+v, want %+v", e, want)
	}

	patch := `{"status":{"conditions":[]}}`
	code, body = c.must("PATCH", "/api/v1/nodes/n1/status", patch)
	e = echo{}
	_ = json.Unmarshal([]byte(body), &e)
	if code != http.StatusOK || e.Method != "PATCH" || e.Body != patch || e.ContentType != "application/merge-patch+json" {
		t.Fatalf("PATCH: %d, upstream saw %+v", code, e)
	}

	// A watch streams: the events arrive while the upstream holds it open.
	resp, err := c.do("GET", "/api/v1/nodes?watch=1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := rd.ReadString('\n')
		if err != nil || line != eventLine(i) {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
	}
}

func TestStatusWithCount(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	setFaults(t, s, `[{"match":{"method":"PATCH","pathPrefix":"/api/v1/nodes"},"action":"status","status":503,"count":2}]`)

	if code, _ := c.must("GET", "/api/v1/nodes", ""); code != http.StatusOK {
		t.Fatalf("GET matched a PATCH rule: %d", code)
	}
	for range 2 {
		code, body := c.must("PATCH", "/api/v1/nodes/n1/status", "{}")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("PATCH: %d, want 503", code)
		}
		checkStatus(t, body, 503, "ServiceUnavailable")
	}
	if code, _ := c.must("PATCH", "/api/v1/nodes/n1/status", "{}"); code != http.StatusOK {
		t.Fatalf("third PATCH: %d, want 200 (the rule is used up)", code)
	}
	var rules []Rule
	ctl(t, s, "GET", "/faults", "", &rules)
	if len(rules) != 0 {
		t.Fatalf("rules left: %+v", rules)
	}
}

func TestRetryAfter(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	setFaults(t, s, `{"rules":[
		{"match":{"method":"POST"},"action":"retry-after","retryAfterSeconds":3,"count":1},
		{"match":{"method":"POST"},"action":"retry-after","status":503,"count":1}]}`)

	for _, want := range []struct {
		code   int
		after  string
		reason string
	}{{429, "3", "TooManyRequests"}, {503, "1", "ServiceUnavailable"}} {
		resp, err := c.do("POST", "/api/v1/namespaces/default/events", "{}")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.code || resp.Header.Get("Retry-After") != want.after {
			t.Fatalf("status %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), want.code, want.after)
		}
		checkStatus(t, string(body), want.code, want.reason)
	}
}

func TestDelay(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	setFaults(t, s, `[{"match":{"pathPrefix":"/apis/coordination.k8s.io/"},"action":"delay","delayMs":300}]`)
	t0 := time.Now()
	code, body := c.must("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", "{}")
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("answered after %v, want >= 300ms", d)
	}
	if code != http.StatusOK || !strings.Contains(body, `"method":"PUT"`) {
		t.Fatalf("delayed request not forwarded: %d %s", code, body)
	}
}

func TestReset(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	setFaults(t, s, `[{"match":{"method":"GET"},"action":"reset","count":1}]`)
	_, err := c.do("GET", "/api/v1/nodes", "")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %v, want a connection reset", err)
	}
	if code, _ := c.must("GET", "/api/v1/nodes", ""); code != http.StatusOK {
		t.Fatalf("after the reset: %d", code)
	}
	r := settledRequests(t, s).Requests[0]
	if r.Fault != "reset" || !r.Cut || r.Status != 0 {
		t.Fatalf("record %+v", r)
	}
}

func TestBlackhole(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	c.hc.Timeout = 300 * time.Millisecond
	setFaults(t, s, `[{"match":{"method":"PATCH"},"action":"blackhole"}]`)
	_, err := c.do("PATCH", "/api/v1/namespaces/ns/pods/p/status", `{"a":1}`)
	var ue interface{ Timeout() bool }
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("got %v, want a client timeout", err)
	}
	// The proxy notices that the client gave up.
	if r := settledRequests(t, s).Requests[0]; r.Fault != "blackhole" || r.Status != 0 || r.Body != `{"a":1}` {
		t.Fatalf("record %+v", r)
	}
}

func TestUnauthorizedFault(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	setFaults(t, s, `[{"action":"unauthorized","count":1}]`)
	code, body := c.must("GET", "/api/v1/nodes/n1", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("status %d", code)
	}
	checkStatus(t, body, 401, "Unauthorized")
}

func TestWatchGone(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	setFaults(t, s, `[{"match":{"pathPrefix":"/api/v1/nodes"},"action":"watch-gone","count":2}]`)

	code, body := c.must("GET", "/api/v1/nodes?watch=true&resourceVersion=1", "")
	if code != http.StatusOK || body != watchGoneLine+"\n" {
		t.Fatalf("watch: %d %q", code, body)
	}
	var ev struct {
		Type   string
		Object struct {
			Kind, Reason string
			Code         int
		}
	}
	if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.Type != "ERROR" || ev.Object.Code != 410 || ev.Object.Reason != "Expired" {
		t.Fatalf("event %+v (%v)", ev, err)
	}
	// Not a watch: a list with a too old resource version.
	code, body = c.must("GET", "/api/v1/nodes?resourceVersion=1", "")
	if code != http.StatusGone {
		t.Fatalf("list: %d", code)
	}
	checkStatus(t, body, 410, "Expired")
}

func TestWatchDropAfter(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	after := len(eventLine(0)) + 10
	setFaults(t, s, fmt.Sprintf(`[
		{"match":{"method":"WATCH"},"action":"watch-drop-after","afterBytes":%d,"count":1},
		{"match":{"watch":true},"action":"watch-drop-after","afterBytes":0,"count":1}]`, after))

	resp, err := c.do("GET", "/api/v1/nodes?watch=1", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) != after || string(got) != (eventLine(0) + eventLine(1))[:after] {
		t.Fatalf("read %d bytes %q, error %v; want %d bytes and an error", len(got), got, err, after)
	}

	resp, err = c.do("GET", "/api/v1/namespaces/ns/pods?watch=1", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err == nil || len(got) != 0 {
		t.Fatalf("afterBytes 0: status %d, %q, error %v", resp.StatusCode, got, err)
	}

	for _, r := range settledRequests(t, s).Requests {
		if r.Fault != actWatchDropAfter || !r.Cut || r.Status != http.StatusOK {
			t.Fatalf("record %+v", r)
		}
	}
}

func TestDropWatches(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	var bodies []*bufio.Reader
	for _, path := range []string{"/api/v1/nodes?watch=1", "/api/v1/namespaces/ns/pods?watch=true"} {
		resp, err := c.do("GET", path, "")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		if _, err := rd.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, rd)
	}
	var out struct{ Dropped int }
	if ctl(t, s, "POST", "/drop-watches", "", &out); out.Dropped != 2 {
		t.Fatalf("dropped %d watches, want 2", out.Dropped)
	}
	for i, rd := range bodies {
		// The two other events may already be buffered; then the cut.
		_, err := io.ReadAll(rd)
		if err == nil {
			t.Fatalf("watch %d ended cleanly, want a cut", i)
		}
	}
	// New watches are not affected.
	resp, err := c.do("GET", "/api/v1/nodes?watch=1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != eventLine(0) {
		t.Fatalf("new watch: %q %v", line, err)
	}
}

func TestTokenChange(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	if code, _ := c.must("GET", "/api/v1/nodes", ""); code != http.StatusOK {
		t.Fatalf("with the initial token: %d", code)
	}
	if code := ctl(t, s, "POST", "/token", `{"token":"new-token"}`, nil); code != http.StatusOK {
		t.Fatalf("POST /token: %d", code)
	}
	code, body := c.must("GET", "/api/v1/nodes", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("with the old token: %d", code)
	}
	checkStatus(t, body, 401, "Unauthorized")
	c.token = "new-token"
	if code, _ := c.must("GET", "/api/v1/nodes", ""); code != http.StatusOK {
		t.Fatalf("with the new token: %d", code)
	}
	c.token = ""
	if code, _ := c.must("GET", "/api/v1/nodes", ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
	if code := ctl(t, s, "POST", "/token", `{"token":"has space"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("POST /token with a bad token: %d", code)
	}
	snap := settledRequests(t, s)
	if snap.Counts["GET nodes"] != 4 || snap.Requests[1].Fault != "token" || snap.Requests[1].Status != 401 {
		t.Fatalf("accounting: %+v", snap)
	}
}

func TestRequestAccounting(t *testing.T) {
	s := startProxy(t)
	c := newClient(t, s)
	big := `{"x":"` + strings.Repeat("a", 5000) + `"}`
	calls := []struct{ method, path, body string }{
		{"GET", "/api/v1/nodes", ""},
		{"GET", "/api/v1/nodes/n1", ""},
		{"PATCH", "/api/v1/nodes/n1/status", `{"p":1}`},
		{"PATCH", "/api/v1/namespaces/ns/pods/p1/status", big},
		{"POST", "/api/v1/namespaces/ns/events", `{"e":1}`},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", `{"l":1}`},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", ""},
	}
	for _, cl := range calls {
		if code, _ := c.must(cl.method, cl.path, cl.body); code != http.StatusOK {
			t.Fatalf("%s %s: %d", cl.method, cl.path, code)
		}
	}
	var watches []io.Closer
	for _, path := range []string{"/api/v1/nodes?watch=1", "/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5"} {
		resp, err := c.do("GET", path, "")
		if err != nil {
			t.Fatal(err)
		}
		watches = append(watches, resp.Body)
	}
	// An open watch is listed with its status.
	if r := requests(t, s).Requests[len(calls)]; !r.InFlight || r.Status != http.StatusOK || r.Key != "WATCH nodes" {
		t.Fatalf("open watch record %+v", r)
	}
	for _, w := range watches {
		w.Close()
	}
	setFaults(t, s, `[{"match":{"method":"GET","pathPrefix":"/version"},"action":"status","status":500}]`)
	if code, _ := c.must("GET", "/version", ""); code != 500 {
		t.Fatalf("GET /version: %d", code)
	}

	snap := settledRequests(t, s)
	want := map[string]int{"GET nodes": 2, "PATCH nodes/status": 1, "PATCH pods/status": 1, "POST events": 1,
		"PUT leases": 1, "GET leases": 1, "WATCH nodes": 1, "WATCH pods": 1, "GET /version": 1}
	if fmt.Sprint(snap.Counts) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", snap.Counts, want)
	}
	if len(snap.Requests) != 10 {
		t.Fatalf("%d records, want 10", len(snap.Requests))
	}
	for i, r := range snap.Requests[:len(calls)] {
		if r.Method != calls[i].method || r.Path != calls[i].path || r.Status != 200 || r.InFlight {
			t.Errorf("record %d: %+v", i, r)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			t.Errorf("record %d: time %q: %v", i, r.Time, err)
		}
	}
	if r := snap.Requests[2]; r.Body != `{"p":1}` || r.BodyTruncated || r.Key != "PATCH nodes/status" {
		t.Errorf("PATCH record %+v", r)
	}
	if r := snap.Requests[3]; len(r.Body) != maxRecordedBody || !r.BodyTruncated {
		t.Errorf("big PATCH record: %d bytes, truncated %v", len(r.Body), r.BodyTruncated)
	}
	if r := snap.Requests[0]; r.Body != "" {
		t.Errorf("GET record has a body: %+v", r)
	}
	if r := snap.Requests[8]; r.Query != "watch=true&resourceVersion=5" || r.Key != "WATCH pods" {
		t.Errorf("watch record %+v", r)
	}
	if r := snap.Requests[9]; r.Fault != "status" || r.Status != 500 {
		t.Errorf("faulted record %+v", r)
	}

	ctl(t, s, "POST", "/requests/reset", "", nil)
	if snap := requests(t, s); len(snap.Counts) != 0 || len(snap.Requests) != 0 {
		t.Fatalf("after reset: %+v", snap)
	}
}

func TestRecordsAreBounded(t *testing.T) {
	var st stats
	for i := range maxRecords + 5 {
		st.begin(&Record{Key: "GET nodes", Path: fmt.Sprint(i)})
	}
	snap := st.snapshot()
	if len(snap.Requests) != maxRecords || snap.Requests[0].Path != "5" || snap.Counts["GET nodes"] != maxRecords+5 {
		t.Fatalf("%d records, first %q, count %d", len(snap.Requests), snap.Requests[0].Path, snap.Counts["GET nodes"])
	}
}

func TestRequestKey(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		watch        bool
		want         string
	}{
		{"GET", "/api/v1/nodes", false, "GET nodes"},
		{"GET", "/api/v1/nodes", true, "WATCH nodes"},
		{"GET", "/api/v1/watch/nodes", true, "WATCH nodes"},
		{"PATCH", "/api/v1/nodes/n1/status", false, "PATCH nodes/status"},
		{"PATCH", "/api/v1/namespaces/ns/pods/p/status", false, "PATCH pods/status"},
		{"GET", "/api/v1/namespaces/ns/pods", true, "WATCH pods"},
		{"GET", "/api/v1/watch/namespaces/ns/pods", true, "WATCH pods"},
		{"POST", "/api/v1/namespaces/ns/events", false, "POST events"},
		{"POST", "/apis/events.k8s.io/v1/namespaces/ns/events", false, "POST events"},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", false, "PUT leases"},
		{"GET", "/api/v1/namespaces/ns", false, "GET namespaces"},
		{"PUT", "/api/v1/namespaces/ns/finalize", false, "PUT namespaces/finalize"},
		{"GET", "/apis/storage.k8s.io/v1/volumeattachments", false, "GET volumeattachments"},
		{"GET", "/api", false, "GET /api"},
		{"GET", "/apis/coordination.k8s.io/v1", false, "GET /apis/coordination.k8s.io/v1"},
		{"GET", "/version", false, "GET /version"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.watch && !strings.Contains(tc.path, "/watch/") {
			r = httptest.NewRequest(tc.method, tc.path+"?watch=1", nil)
		}
		if got := isWatch(r); got != tc.watch {
			t.Errorf("isWatch(%s) = %v", r.URL, got)
		}
		if got := requestKey(tc.method, tc.path, tc.watch); got != tc.want {
			t.Errorf("requestKey(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestFaultRulesControl(t *testing.T) {
	s := startProxy(t)
	for _, bad := range []string{
		`[{"action":"explode"}]`,
		`[{"action":"status","stauts":503}]`,
		`[{"action":"status","status":42}]`,
		`[{"action":"delay","delayMs":-1}]`,
		`{"rules":[{"action":"reset"}],"extra":1}`,
		`not json`,
	} {
		if code := ctl(t, s, "POST", "/faults", bad, nil); code != http.StatusBadRequest {
			t.Errorf("POST /faults %s: %d, want 400", bad, code)
		}
	}
	setFaults(t, s, `[{"action":"reset","count":3}]`)
	var rules []Rule
	if ctl(t, s, "POST", "/faults?append=1", `[{"match":{"method":"get"},"action":"status"}]`, &rules); len(rules) != 2 {
		t.Fatalf("after append: %+v", rules)
	}
	if rules[0].Remaining != 3 || rules[1].Status != 503 || rules[1].Match.Method != "GET" {
		t.Fatalf("rules %+v", rules)
	}
	ctl(t, s, "DELETE", "/faults", "", nil)
	if ctl(t, s, "GET", "/faults", "", &rules); len(rules) != 0 {
		t.Fatalf("after DELETE: %+v", rules)
	}
	resp, err := http.Get(s.controlURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("healthz: %q", b)
	}
}
