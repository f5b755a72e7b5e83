// Command e2e-ctl is the small client scripts/localcluster uses instead of
// kubectl (which the e2e build does not produce):
//
//	e2e-ctl apply FILE...        server-side apply of multi-document YAML
//	e2e-ctl nodes --count N      create kwok-node-0..N-1 (idempotent) and wait until Ready
//	e2e-ctl status               one line per node and per pod on the kwok nodes
//	e2e-ctl wait-ready           wait until the API server answers and RBAC is bootstrapped
//	e2e-ctl token --namespace NS --service-account SA [--duration D]
//	                             print a bound token of SA (TokenRequest API), nothing else
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"edgewarden.io/e2e/internal/harness"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("e2e-ctl: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: e2e-ctl apply|nodes|status|wait-ready|token [flags]")
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig (default $KUBECONFIG)")
	count := fs.Int("count", 3, "nodes: number of kwok nodes")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait")
	namespace := fs.String("namespace", "", "token: the ServiceAccount's namespace")
	serviceAccount := fs.String("service-account", "", "token: the ServiceAccount")
	duration := fs.Duration("duration", time.Hour, "token: requested lifetime (the server may shorten it)")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cfg, err := harness.Config(*kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cfg.UserAgent = "e2e-ctl"
	client := kubernetes.NewForConfigOrDie(cfg)
	switch cmd {
	case "apply":
		for _, f := range fs.Args() {
			if err := harness.Apply(ctx, cfg, f, func(kind, name string) { fmt.Printf("applied %s/%s\n", kind, name) }); err != nil {
				log.Fatalf("%s: %v", f, err)
			}
		}
	case "nodes":
		if err := nodes(ctx, client, *count); err != nil {
			log.Fatal(err)
		}
	case "status":
		if err := status(ctx, client); err != nil {
			log.Fatal(err)
		}
	case "wait-ready":
		err := poll(ctx, func() (bool, error) {
			_, err := client.RbacV1().ClusterRoles().Get(ctx, "system:kube-controller-manager", metav1.GetOptions{})
			return err == nil, nil
		})
		if err != nil {
			log.Fatalf("API server not ready: %v", err)
		}
	case "token":
		if *namespace == "" || *serviceAccount == "" {
			log.Fatal("token: --namespace and --service-account are required")
		}
		tok, err := token(ctx, client, *namespace, *serviceAccount, *duration)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tok)
	default:
		log.Fatalf("unknown command %q", cmd)
	}
}

// token asks the TokenRequest API (POST .../serviceaccounts/SA/token) for a
// token bound to nothing but the ServiceAccount, valid for d, retrying while
// the ServiceAccount is not visible yet.
func token(ctx context.Context, client kubernetes.Interface, ns, sa string, d time.Duration) (string, error) {
	secs := int64(d / time.Second)
	var tok string
	var last error
	err := poll(ctx, func() (bool, error) {
		tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
		}, metav1.CreateOptions{})
		switch {
		case err == nil && tr.Status.Token != "":
			tok = tr.Status.Token
			return true, nil
		case err == nil:
			return false, fmt.Errorf("token request for %s/%s: empty token in the answer", ns, sa)
		case apierrors.IsNotFound(err):
			last = err
			return false, nil
		default:
			return false, fmt.Errorf("token request for %s/%s: %w", ns, sa, err)
		}
	})
	if err != nil && last != nil {
		return "", fmt.Errorf("%w (last: %v)", err, last)
	}
	return tok, err
}

func poll(ctx context.Context, cond func() (bool, error)) error { return harness.Poll(ctx, cond) }

// NodeName is the name of the i-th kwok node.
func NodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

func nodes(ctx context.Context, client kubernetes.Interface, n int) error {
	for i := range n {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: NodeName(i),
				Labels: map[string]string{
					harness.NodeTypeLabel:    harness.NodeTypeValue,
					"kubernetes.io/hostname": NodeName(i),
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"kubernetes.io/role":     "agent",
				},
				Annotations: map[string]string{
					"kwok.x-k8s.io/node":                                     "fake",
					"node.alpha.kubernetes.io/ttl":                           "0",
					"volumes.kubernetes.io/controller-managed-attach-detach": "true",
				},
			},
			Spec: corev1.NodeSpec{
				// Pod IPs on loopback, one /24 per node: the stand-in can bind them.
				PodCIDR:  fmt.Sprintf("127.1.%d.0/24", i+1),
				PodCIDRs: []string{fmt.Sprintf("127.1.%d.0/24", i+1)},
				Taints: []corev1.Taint{{
					Key: "kwok.x-k8s.io/node", Value: "fake", Effect: corev1.TaintEffectNoSchedule,
				}},
			},
		}
		_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
	}
	return poll(ctx, func() (bool, error) {
		ready := 0
		for i := range n {
			node, err := client.CoreV1().Nodes().Get(ctx, NodeName(i), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == n, nil
	})
}

func status(ctx context.Context, client kubernetes.Interface) error {
	nl, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nl.Items {
		ready := "Unknown"
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = string(c.Status)
			}
		}
		taints := []string{}
		for _, t := range n.Spec.Taints {
			taints = append(taints, t.Key+":"+string(t.Effect))
		}
		fmt.Printf("node %-12s Ready=%-7s podCIDR=%-14s volumesAttached=%d volumesInUse=%d taints=%s\n",
			n.Name, ready, n.Spec.PodCIDR, len(n.Status.VolumesAttached), len(n.Status.VolumesInUse), strings.Join(taints, ","))
	}
	pl, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range pl.Items {
		fmt.Printf("pod  %s/%s node=%s phase=%s ip=%s\n", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
	}
	return nil
}
