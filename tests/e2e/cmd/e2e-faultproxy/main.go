// Command e2e-faultproxy is a fault-injecting HTTPS reverse proxy that sits
// between the edgewarden agent and the real kube-apiserver, so the e2e tests
// can make the API misbehave in ways a healthy control plane never does:
// error statuses, Retry-After throttling, slow answers, TCP resets, requests
// that are never answered, expired tokens, expired watches and watch streams
// cut mid-event.
//
// At start it creates its own CA and a serving certificate for 127.0.0.1
// (ECDSA P-256) and writes, under --out-dir:
//
//	ca.crt               the proxy's CA
//	kubeconfig           server https://127.0.0.1:<port>, certificate-authority
//	                     ca.crt, user token <random token the proxy checks>
//	token                the same token, alone
//	kubeconfig-tokenfile as kubeconfig, but with tokenFile: <out-dir>/token,
//	                     for tests that rotate the token (POST /token, then
//	                     rewrite the token file)
//
// It then prints exactly one line to stdout,
//
//	ready proxy=https://127.0.0.1:PORT control=http://127.0.0.1:PORT kubeconfig=DIR/kubeconfig
//
// and serves until SIGTERM or SIGINT, or until the --parent-pid process is
// gone. Requests that carry the proxy's token are forwarded to the server of
// --upstream-kubeconfig with that kubeconfig's credentials (client
// certificate, token or token file) in place of the proxy's token; responses,
// watch streams included, are passed through as they arrive.
//
// A test points the agent at DIR/kubeconfig and drives the proxy over the
// plain-HTTP control API (JSON everywhere):
//
//	GET    /healthz          "ok"
//	POST   /faults           replace the fault rules (a JSON list of rules, or
//	                         {"rules": [...]}); ?append=1 appends instead
//	GET    /faults           the rules left, with "remaining" uses
//	DELETE /faults           remove every rule
//	POST   /drop-watches     reset every watch stream open now: {"dropped": N}
//	GET    /requests         {"counts": {"PATCH nodes/status": 3, ...},
//	                          "requests": [the last 1000 requests]}
//	POST   /requests/reset   forget the counts and the request list
//	POST   /token            {"token": "new"}: accept only this token from now on
//
// A rule is
//
//	{"match": {"method": "PATCH", "pathPrefix": "/api/v1/nodes", "watch": false},
//	 "action": "status", "status": 503, "retryAfterSeconds": 1, "delayMs": 500,
//	 "afterBytes": 0, "count": 2}
//
// Every match field is optional (method "WATCH" means a GET with watch=1);
// rules are tried in order and the first match applies; a rule with count N
// is removed after N uses (0: never). The actions:
//
//	status            reply status (default 503) with a meta/v1 Status body
//	retry-after       reply status (default 429) with Retry-After:
//	                  retryAfterSeconds (default 1) and a Status body
//	delay             wait delayMs, then forward
//	reset             read the request, then close the TCP connection with an RST
//	blackhole         read the request and never answer; the connection is
//	                  reset when the client gives up, or after 10 minutes
//	unauthorized      401 with the Status body an expired token gets
//	watch-gone        a watch gets 200 and one ERROR event (410 Expired), then
//	                  the stream ends; any other request gets 410 Expired
//	watch-drop-after  forward, but reset the connection once afterBytes bytes
//	                  of the response body have been sent (0: right after the
//	                  headers)
//
// Requests without the proxy's token get 401 and are counted, with fault
// "token". Every request is counted under "VERB resource", where VERB is the
// HTTP method, or WATCH for a watch, and resource is the resource and
// subresource from the path: "GET nodes", "PATCH nodes/status",
// "POST events", "PUT leases", "WATCH pods"; paths outside /api and /apis are
// counted under the path itself ("GET /version").
//
// The proxy only ever listens on loopback addresses.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// maxRecords is how many requests GET /requests lists.
	maxRecords = 1000
	// maxRecordedBody is how much of a PATCH, POST or PUT body a record keeps.
	maxRecordedBody = 4 << 10
	// maxBody bounds the request bodies the proxy buffers.
	maxBody = 32 << 20
	// blackholeLimit bounds how long a blackholed request is held.
	blackholeLimit = 10 * time.Minute
	// watchGoneLine is the watch event a watch-gone fault sends: what the API
	// server sends when a watch starts from a compacted resource version.
	watchGoneLine = `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}}`
)

// The actions a rule can take.
const (
	actStatus         = "status"
	actRetryAfter     = "retry-after"
	actDelay          = "delay"
	actReset          = "reset"
	actBlackhole      = "blackhole"
	actUnauthorized   = "unauthorized"
	actWatchGone      = "watch-gone"
	actWatchDropAfter = "watch-drop-after"
)

func main() {
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("e2e-faultproxy: ")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// options are the command-line flags.
type options struct {
	upstreamKubeconfig string
	listen             string
	control            string
	outDir             string
	parentPID          int
}

// run parses args, starts the proxy, prints the ready line to stdout and
// serves until ctx is done or the parent process is gone.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("e2e-faultproxy", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.upstreamKubeconfig, "upstream-kubeconfig", "", "kubeconfig of the real API server (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback address of the HTTPS proxy")
	fs.StringVar(&o.control, "control", "127.0.0.1:0", "loopback address of the plain-HTTP control API")
	fs.StringVar(&o.outDir, "out-dir", "", "directory for ca.crt, kubeconfig, token and kubeconfig-tokenfile (required)")
	fs.IntVar(&o.parentPID, "parent-pid", 0, "exit when this process is gone (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.upstreamKubeconfig == "" || o.outDir == "" {
		return errors.New("--upstream-kubeconfig and --out-dir are required")
	}
	s, err := start(o)
	if err != nil {
		return err
	}
	defer s.close()
	if _, err := fmt.Fprintf(stdout, "ready proxy=%s control=%s kubeconfig=%s\n", s.proxyURL, s.controlURL, s.kubeconfig); err != nil {
		return err
	}
	log.Printf("forwarding %s to %s", s.proxyURL, s.upstream)

	var parentGone <-chan struct{}
	if o.parentPID > 0 {
		parentGone = watchParent(ctx, o.parentPID)
	}
	select {
	case <-ctx.Done():
		log.Print("signal received, stopping")
	case <-parentGone:
		log.Printf("parent process %d is gone, stopping", o.parentPID)
	case err := <-s.serveErr:
		return err
	}
	return nil
}

// watchParent returns a channel that is closed once process pid is gone,
// checked every second. A parent that was ours at start counts as gone as
// soon as we are re-parented, even while it lingers as a zombie.
func watchParent(ctx context.Context, pid int) <-chan struct{} {
	gone := make(chan struct{})
	wasParent := os.Getppid() == pid
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || (wasParent && os.Getppid() != pid) {
				close(gone)
				return
			}
		}
	}()
	return gone
}

// server is one running proxy with its control API.
type server struct {
	upstream   *url.URL
	proxyURL   string
	controlURL string
	kubeconfig string

	faults  faultSet
	stats   stats
	watches watchSet
	rp      *httputil.ReverseProxy

	tokenMu sync.Mutex
	token   string

	stop      chan struct{} // closed by close: releases blackholed requests
	proxySrv  *http.Server
	ctrlSrv   *http.Server
	serveErr  chan error
	closeOnce sync.Once
}

// start loads the upstream kubeconfig, binds both listeners, writes the
// files under o.outDir and starts serving.
func start(o options) (*server, error) {
	upCfg, err := clientcmd.BuildConfigFromFlags("", o.upstreamKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("upstream kubeconfig: %w", err)
	}
	upstream, err := url.Parse(upCfg.Host)
	if err != nil || upstream.Scheme == "" || upstream.Host == "" {
		return nil, fmt.Errorf("upstream kubeconfig: bad server %q", upCfg.Host)
	}
	// The transport adds the upstream credentials: client certificate, token
	// or token file (re-read as client-go does).
	upTransport, err := rest.TransportFor(upCfg)
	if err != nil {
		return nil, fmt.Errorf("upstream transport: %w", err)
	}
	outDir, err := filepath.Abs(o.outDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}

	tlsCfg, caPEM, err := newServingTLS()
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	proxyLn, err := listenLoopback(o.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	ctrlLn, err := listenLoopback(o.control)
	if err != nil {
		proxyLn.Close()
		return nil, fmt.Errorf("--control: %w", err)
	}

	s := &server{
		upstream:   upstream,
		proxyURL:   "https://" + proxyLn.Addr().String(),
		controlURL: "http://" + ctrlLn.Addr().String(),
		kubeconfig: filepath.Join(outDir, "kubeconfig"),
		token:      token,
		stop:       make(chan struct{}),
		serveErr:   make(chan error, 2),
	}
	s.watches.m = make(map[int]func())
	s.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			// The upstream transport only adds its credentials when the
			// request carries none.
			pr.Out.Header.Del("Authorization")
		},
		Transport:     upTransport,
		FlushInterval: -1, // pass watch events through as they arrive
		ErrorLog:      log.Default(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client is gone, or the proxy cut the connection
			}
			log.Printf("upstream %s %s: %v", r.Method, r.URL.Path, err)
			writeStatus(w, http.StatusBadGateway, "e2e-faultproxy: upstream: "+err.Error(), nil)
		},
	}

	caPath := filepath.Join(outDir, "ca.crt")
	tokenPath := filepath.Join(outDir, "token")
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{caPath, caPEM, 0o644},
		{tokenPath, []byte(token + "\n"), 0o600},
		{s.kubeconfig, kubeconfigYAML(s.proxyURL, caPath, "token: "+token), 0o600},
		{filepath.Join(outDir, "kubeconfig-tokenfile"), kubeconfigYAML(s.proxyURL, caPath, "tokenFile: "+tokenPath), 0o600},
	}
	for _, f := range files {
		if err := writeFileAtomic(f.path, f.data, f.mode); err != nil {
			proxyLn.Close()
			ctrlLn.Close()
			return nil, err
		}
	}

	// HTTP/1.1 only: the agent speaks it, and faults need to hijack the
	// connection.
	var h1 http.Protocols
	h1.SetHTTP1(true)
	s.proxySrv = &http.Server{
		Handler:           s,
		TLSConfig:         tlsCfg,
		Protocols:         &h1,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.Default(),
	}
	s.ctrlSrv = &http.Server{Handler: s.controlMux(), ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := s.proxySrv.ServeTLS(proxyLn, "", ""); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("proxy: %w", err)
		}
	}()
	go func() {
		if err := s.ctrlSrv.Serve(ctrlLn); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("control: %w", err)
		}
	}()
	return s, nil
}

// close stops both servers; open watch streams and blackholed requests are
// cut.
func (s *server) close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.watches.dropAll()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.ctrlSrv.Shutdown(ctx)
		if err := s.proxySrv.Shutdown(ctx); err != nil {
			_ = s.proxySrv.Close()
		}
	})
}

// listenLoopback listens on addr, which must be a loopback IP and a port.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%q is not a loopback IP address", host)
	}
	return net.Listen("tcp", addr)
}

// newServingTLS creates a CA and a certificate for 127.0.0.1, ::1 and
// localhost signed by it. It returns the server's TLS config and the CA in
// PEM.
func newServingTLS() (*tls.Config, []byte, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "e2e-faultproxy CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der, caDER}, PrivateKey: key}},
	}
	return cfg, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// kubeconfigYAML is a kubeconfig for server, trusting caPath, whose user
// has the single field auth ("token: ..." or "tokenFile: ...").
func kubeconfigYAML(server, caPath, auth string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: e2e-faultproxy
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: e2e-faultproxy
  user:
    %s
contexts:
- name: e2e-faultproxy
  context:
    cluster: e2e-faultproxy
    user: e2e-faultproxy
current-context: e2e-faultproxy
`, server, caPath, auth)
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ---- fault rules ----

// Match selects requests; empty fields match everything.
type Match struct {
	// Method is an HTTP method, or WATCH for a GET with watch=1.
	Method string `json:"method,omitempty"`
	// PathPrefix is compared with the URL path.
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Watch, when set, matches only watches (true) or only non-watches.
	Watch *bool `json:"watch,omitempty"`
}

// Rule is one fault rule of POST /faults.
type Rule struct {
	Match             Match  `json:"match"`
	Action            string `json:"action"`
	Status            int    `json:"status,omitempty"`
	RetryAfterSeconds int    `json:"retryAfterSeconds,omitempty"`
	DelayMs           int    `json:"delayMs,omitempty"`
	AfterBytes        int64  `json:"afterBytes,omitempty"`
	// Count is how many requests the rule applies to; 0 is unlimited.
	Count int `json:"count,omitempty"`
	// Remaining is output only: the uses left of a counted rule.
	Remaining int `json:"remaining,omitempty"`
}

// validate checks r and fills in defaults.
func (r *Rule) validate() error {
	switch r.Action {
	case actStatus:
		if r.Status == 0 {
			r.Status = http.StatusServiceUnavailable
		}
	case actRetryAfter:
		if r.Status == 0 {
			r.Status = http.StatusTooManyRequests
		}
		if r.RetryAfterSeconds == 0 {
			r.RetryAfterSeconds = 1
		}
	case actDelay, actReset, actBlackhole, actUnauthorized, actWatchGone, actWatchDropAfter:
	default:
		return fmt.Errorf("unknown action %q", r.Action)
	}
	switch {
	case r.Status != 0 && (r.Status < 200 || r.Status > 599):
		return fmt.Errorf("action %s: status %d is not 200-599", r.Action, r.Status)
	case r.RetryAfterSeconds < 0, r.DelayMs < 0, r.AfterBytes < 0, r.Count < 0:
		return fmt.Errorf("action %s: retryAfterSeconds, delayMs, afterBytes and count cannot be negative", r.Action)
	}
	r.Match.Method = strings.ToUpper(r.Match.Method)
	r.Remaining = r.Count
	return nil
}

func (m *Match) matches(method, path string, watch bool) bool {
	if m.Method == "WATCH" {
		if method != http.MethodGet || !watch {
			return false
		}
	} else if m.Method != "" && m.Method != method {
		return false
	}
	if m.Watch != nil && *m.Watch != watch {
		return false
	}
	return strings.HasPrefix(path, m.PathPrefix)
}

// faultSet is the ordered list of rules.
type faultSet struct {
	mu    sync.Mutex
	rules []Rule
}

// pick returns the first rule matching the request and uses it up once.
func (f *faultSet) pick(method, path string, watch bool) (Rule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rules {
		r := &f.rules[i]
		if !r.Match.matches(method, path, watch) {
			continue
		}
		picked := *r
		if r.Count > 0 {
			r.Remaining--
			if r.Remaining <= 0 {
				f.rules = append(f.rules[:i], f.rules[i+1:]...)
			}
		}
		return picked, true
	}
	return Rule{}, false
}

func (f *faultSet) set(rules []Rule, appendRules bool) []Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	if appendRules {
		f.rules = append(f.rules, rules...)
	} else {
		f.rules = rules
	}
	return append([]Rule{}, f.rules...)
}

func (f *faultSet) list() []Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Rule{}, f.rules...)
}

// ---- accounting ----

// Record is one request in GET /requests.
type Record struct {
	Time string `json:"time"` // when it arrived, RFC 3339 with nanoseconds
	// Key is "VERB resource", as in the counts.
	Key    string `json:"key"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"`
	// Status is the status sent; 0 when none was (reset, blackhole).
	Status     int     `json:"status"`
	DurationMs float64 `json:"durationMs"`
	// Fault is the action applied, or "token" for a request refused for
	// its token.
	Fault string `json:"fault,omitempty"`
	// Cut is set when the proxy reset the connection.
	Cut bool `json:"cut,omitempty"`
	// InFlight is set while the request is being served (open watches).
	InFlight bool `json:"inFlight,omitempty"`
	// Body is the start of a PATCH, POST or PUT body.
	Body          string `json:"body,omitempty"`
	BodyTruncated bool   `json:"bodyTruncated,omitempty"`
}

// stats counts requests by key and keeps the last maxRecords of them.
type stats struct {
	mu      sync.Mutex
	counts  map[string]int
	records []*Record
}

func (st *stats) begin(rec *Record) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.counts == nil {
		st.counts = make(map[string]int)
	}
	st.counts[rec.Key]++
	if len(st.records) >= maxRecords {
		st.records = append(st.records[:0], st.records[len(st.records)-maxRecords+1:]...)
	}
	st.records = append(st.records, rec)
}

// setStatus shows the status of a request still in flight (a watch).
func (st *stats) setStatus(rec *Record, status int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec.Status = status
}

func (st *stats) end(rec *Record, status int, cut bool, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec.Status = status
	rec.Cut = cut
	rec.DurationMs = float64(d.Microseconds()) / 1000
	rec.InFlight = false
}

// snapshot is the body of GET /requests.
type snapshot struct {
	Counts   map[string]int `json:"counts"`
	Requests []Record       `json:"requests"`
}

func (st *stats) snapshot() snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := snapshot{Counts: make(map[string]int, len(st.counts)), Requests: make([]Record, len(st.records))}
	for k, v := range st.counts {
		s.Counts[k] = v
	}
	for i, r := range st.records {
		s.Requests[i] = *r
	}
	return s
}

func (st *stats) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.counts = nil
	st.records = nil
}

// isWatch tells whether a request is a watch: ?watch=1 or true, or the old
// /watch/ path form.
func isWatch(r *http.Request) bool {
	if w, err := strconv.ParseBool(r.URL.Query().Get("watch")); err == nil && w {
		return true
	}
	res, _ := splitAPIPath(r.URL.Path)
	return len(res) > 0 && res[0] == "watch"
}

// splitAPIPath returns the path segments after /api/VERSION or
// /apis/GROUP/VERSION; ok is false for other paths.
func splitAPIPath(path string) (rest []string, ok bool) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(seg) >= 2 && seg[0] == "api":
		return seg[2:], true
	case len(seg) >= 3 && seg[0] == "apis":
		return seg[3:], true
	}
	return nil, false
}

// requestKey is "VERB resource" for the counts: VERB is the method, or WATCH
// for a watch; resource is resource[/subresource] as the API server's
// request-info parser finds them, or the path outside the resource API.
func requestKey(method, path string, watch bool) string {
	verb := method
	if watch {
		verb = "WATCH"
	}
	rest, ok := splitAPIPath(path)
	if len(rest) > 0 && rest[0] == "watch" {
		rest = rest[1:]
	}
	// namespaces/NS/RESOURCE/... is a namespaced resource, except for the
	// namespace's own subresources.
	if len(rest) > 2 && rest[0] == "namespaces" && rest[2] != "status" && rest[2] != "finalize" {
		rest = rest[2:]
	}
	switch {
	case !ok || len(rest) == 0 || rest[0] == "":
		return verb + " " + path
	case len(rest) >= 3:
		return verb + " " + rest[0] + "/" + rest[2]
	default:
		return verb + " " + rest[0]
	}
}

// ---- open watches ----

// watchSet holds a cut function for every watch being forwarded.
type watchSet struct {
	mu   sync.Mutex
	next int
	m    map[int]func()
}

func (ws *watchSet) add(cut func()) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.next++
	ws.m[ws.next] = cut
	return ws.next
}

func (ws *watchSet) remove(id int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.m, id)
}

// dropAll cuts every open watch and returns how many there were.
func (ws *watchSet) dropAll() int {
	ws.mu.Lock()
	cuts := make([]func(), 0, len(ws.m))
	for _, c := range ws.m {
		cuts = append(cuts, c)
	}
	ws.mu.Unlock()
	for _, c := range cuts {
		c()
	}
	return len(cuts)
}

// ---- the proxy ----

var errCut = errors.New("e2e-faultproxy: connection cut")

// respWriter wraps a proxied request's ResponseWriter: it remembers the
// status, counts body bytes, and can reset the connection, from the
// handler (reset, watch-drop-after) or from another goroutine
// (drop-watches). Every use of the underlying writer holds mu.
type respWriter struct {
	w        http.ResponseWriter
	mu       sync.Mutex
	status   int
	sent     int64
	limit    int64              // reset once this many body bytes are sent; -1: never
	cancel   context.CancelFunc // cancels the upstream request, if any
	onStatus func(int)          // called with the final status when it is sent
	cut      bool               // the connection was reset
	done     bool               // the handler has returned
}

func (w *respWriter) Header() http.Header { return w.w.Header() }

func (w *respWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(code)
}

func (w *respWriter) writeHeaderLocked(code int) {
	if w.cut || w.done || w.status != 0 {
		return
	}
	w.w.WriteHeader(code)
	if code < 200 {
		return // informational: the final status comes later
	}
	w.status = code
	if w.onStatus != nil {
		w.onStatus(code)
	}
	if w.limit == 0 {
		w.cutLocked()
	}
}

func (w *respWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 {
		w.writeHeaderLocked(http.StatusOK)
	}
	if w.cut || w.done {
		return 0, errCut
	}
	if w.limit < 0 || w.sent+int64(len(p)) < w.limit {
		n, err := w.w.Write(p)
		w.sent += int64(n)
		return n, err
	}
	n, err := w.w.Write(p[:w.limit-w.sent])
	w.sent += int64(n)
	w.cutLocked()
	if err == nil {
		err = errCut
	}
	return n, err
}

// FlushError is what http.ResponseController and the reverse proxy call.
func (w *respWriter) FlushError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cut || w.done {
		return errCut
	}
	return http.NewResponseController(w.w).Flush()
}

func (w *respWriter) Flush() { _ = w.FlushError() }

// reset cuts the connection with an RST; safe from any goroutine.
func (w *respWriter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cutLocked()
}

func (w *respWriter) cutLocked() {
	if w.cut || w.done {
		return
	}
	w.cut = true
	rc := http.NewResponseController(w.w)
	if w.status != 0 {
		_ = rc.Flush() // what was written goes out before the RST
	}
	if conn, _, err := rc.Hijack(); err == nil {
		resetConn(conn)
	} else {
		log.Printf("cannot hijack the connection: %v", err)
	}
	if w.cancel != nil {
		w.cancel()
	}
}

// finish marks the handler as returned and gives the final status.
func (w *respWriter) finish() (status int, cut bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	return w.status, w.cut
}

// resetConn closes c so that the peer gets an RST: SO_LINGER 0 on the TCP
// connection, closed under the TLS layer (no close_notify).
func resetConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// ServeHTTP checks the token, applies the first matching fault rule and
// forwards what is left to the upstream API server.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	watch := isWatch(r)
	rec := &Record{
		Time:     start.UTC().Format(time.RFC3339Nano),
		Key:      requestKey(r.Method, r.URL.Path, watch),
		Method:   r.Method,
		Path:     r.URL.Path,
		Query:    r.URL.RawQuery,
		InFlight: true,
	}
	// Buffer the body: it is recorded, and reading it to the end lets the
	// server notice when a blackholed client goes away.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client is gone
	}
	if len(body) > maxBody {
		writeStatus(w, http.StatusRequestEntityTooLarge, "e2e-faultproxy: request body too large", nil)
		return
	}
	r.Body, r.ContentLength = http.NoBody, 0
	if len(body) > 0 {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	switch r.Method {
	case http.MethodPatch, http.MethodPost, http.MethodPut:
		rec.Body = string(body[:min(len(body), maxRecordedBody)])
		rec.BodyTruncated = len(body) > maxRecordedBody
	}

	var rule Rule
	if !s.tokenOK(r) {
		rec.Fault = "token"
	} else if picked, ok := s.faults.pick(r.Method, r.URL.Path, watch); ok {
		rule = picked
		rec.Fault = rule.Action
		log.Printf("fault %s on %s %s", rule.Action, r.Method, r.URL.RequestURI())
	}
	s.stats.begin(rec)

	rw := &respWriter{w: w, limit: -1, onStatus: func(code int) { s.stats.setStatus(rec, code) }}
	// Deferred so that it also runs when the reverse proxy aborts the
	// handler with http.ErrAbortHandler after a cut.
	defer func() {
		status, cut := rw.finish()
		s.stats.end(rec, status, cut, time.Since(start))
	}()

	switch {
	case rec.Fault == "token":
		writeStatus(rw, http.StatusUnauthorized, "Unauthorized", nil)
	case rule.Action == actStatus:
		writeStatus(rw, rule.Status, fmt.Sprintf("e2e-faultproxy: injected status %d", rule.Status), nil)
	case rule.Action == actRetryAfter:
		rw.Header().Set("Retry-After", strconv.Itoa(rule.RetryAfterSeconds))
		writeStatus(rw, rule.Status, "e2e-faultproxy: injected Retry-After, please try again later",
			&metav1.StatusDetails{RetryAfterSeconds: int32(rule.RetryAfterSeconds)})
	case rule.Action == actUnauthorized:
		writeStatus(rw, http.StatusUnauthorized, "Unauthorized", nil)
	case rule.Action == actReset:
		rw.reset()
	case rule.Action == actBlackhole:
		t := time.NewTimer(blackholeLimit)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-s.stop:
		case <-t.C:
		}
		rw.reset()
	case rule.Action == actWatchGone && watch:
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(rw, watchGoneLine+"\n")
		rw.Flush()
	case rule.Action == actWatchGone:
		writeStatus(rw, http.StatusGone, "too old resource version: 1 (2)", nil)
	default: // no rule, delay, watch-drop-after
		if rule.Action == actDelay {
			t := time.NewTimer(time.Duration(rule.DelayMs) * time.Millisecond)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if rule.Action == actWatchDropAfter {
			rw.limit = rule.AfterBytes
		}
		s.forward(rw, r, watch)
	}
}

// forward passes r to the upstream; a watch can be cut by POST /drop-watches.
func (s *server) forward(rw *respWriter, r *http.Request, watch bool) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rw.mu.Lock()
	rw.cancel = cancel
	rw.mu.Unlock()
	if watch {
		defer s.watches.remove(s.watches.add(rw.reset))
	}
	s.rp.ServeHTTP(rw, r.WithContext(ctx))
}

func (s *server) tokenOK(r *http.Request) bool {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.tokenMu.Lock()
	want := s.token
	s.tokenMu.Unlock()
	return strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(want)) == 1
}

// statusReasons are the reasons the API server gives with each code.
var statusReasons = map[int]metav1.StatusReason{
	http.StatusBadRequest:            metav1.StatusReasonBadRequest,
	http.StatusUnauthorized:          metav1.StatusReasonUnauthorized,
	http.StatusForbidden:             metav1.StatusReasonForbidden,
	http.StatusNotFound:              metav1.StatusReasonNotFound,
	http.StatusMethodNotAllowed:      metav1.StatusReasonMethodNotAllowed,
	http.StatusNotAcceptable:         metav1.StatusReasonNotAcceptable,
	http.StatusConflict:              metav1.StatusReasonConflict,
	http.StatusGone:                  metav1.StatusReasonExpired,
	http.StatusRequestEntityTooLarge: metav1.StatusReasonRequestEntityTooLarge,
	http.StatusUnsupportedMediaType:  metav1.StatusReasonUnsupportedMediaType,
	http.StatusUnprocessableEntity:   metav1.StatusReasonInvalid,
	http.StatusTooManyRequests:       metav1.StatusReasonTooManyRequests,
	http.StatusInternalServerError:   metav1.StatusReasonInternalError,
	http.StatusServiceUnavailable:    metav1.StatusReasonServiceUnavailable,
	http.StatusGatewayTimeout:        metav1.StatusReasonTimeout,
}

// writeStatus replies code with a meta/v1 Status body, as the API server
// does.
func writeStatus(w http.ResponseWriter, code int, message string, details *metav1.StatusDetails) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  message,
		Reason:   statusReasons[code],
		Details:  details,
		Code:     int32(code),
	}
	if code < 400 {
		st.Status = metav1.StatusSuccess
	}
	body, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// ---- control API ----

func (s *server) controlMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.faults.list())
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		rules, err := decodeRules(r.Body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		appendRules, _ := strconv.ParseBool(r.URL.Query().Get("append"))
		all := s.faults.set(rules, appendRules)
		log.Printf("control: %d fault rule(s) now", len(all))
		writeJSON(w, http.StatusOK, all)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		s.faults.set(nil, false)
		log.Print("control: fault rules cleared")
		writeJSON(w, http.StatusOK, []Rule{})
	})
	mux.HandleFunc("POST /drop-watches", func(w http.ResponseWriter, _ *http.Request) {
		n := s.watches.dropAll()
		log.Printf("control: dropped %d watch(es)", n)
		writeJSON(w, http.StatusOK, map[string]int{"dropped": n})
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.stats.snapshot())
	})
	mux.HandleFunc("POST /requests/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.stats.reset()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || !validToken(req.Token) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"token": "<visible ASCII, no spaces>"}`})
			return
		}
		s.tokenMu.Lock()
		s.token = req.Token
		s.tokenMu.Unlock()
		log.Print("control: token changed")
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	return mux
}

// decodeRules reads a JSON list of rules, or {"rules": [...]}, and
// validates them.
func decodeRules(body io.Reader) ([]Rule, error) {
	data, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var wrapped struct {
			Rules json.RawMessage `json:"rules"`
		}
		if err := strictUnmarshal(data, &wrapped); err != nil {
			return nil, err
		}
		data = wrapped.Rules
	}
	var rules []Rule
	if err := strictUnmarshal(data, &rules); err != nil {
		return nil, err
	}
	for i := range rules {
		if err := rules[i].validate(); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
	}
	return rules, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func validToken(t string) bool {
	if t == "" {
		return false
	}
	for _, c := range []byte(t) {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
