// Command e2e-leasesim stands in for many edgewarden agents at once, for
// bench/leader-cost: it creates N heartbeat Leases the way the agents write
// them (docs/node-loss.md, "Heartbeat Lease") and renews each one every
// --renew, spread evenly over the interval (N / renew renewals per second),
// for --duration once they exist, or until SIGTERM/SIGINT; then it deletes
// them.
//
//	e2e-leasesim --kubeconfig K [--count 5000] [--renew 5s] [--duration 0]
//
// Lease i is edgewarden-sim-<i> in --namespace (edgewarden), label
// edgewarden.io/lease=heartbeat (and edgewarden.io/leasesim=true, by which it
// deletes them, leftovers of an earlier run included), holderIdentity
// sim-<i>, leaseDurationSeconds 15, annotation edgewarden.io/fenced "false".
// No Node objects are made: the remediator still watches and decodes every
// renewal, which is the cost bench/leader-cost measures.
//
// Output (stdout), one line every --report and one at the end:
//
//	LEASESIM t=<unix s> renewals=<total> errors=<total> skipped=<total> rate=<renewals/s since the last line> target=<N/renew>
//	LEASESIM done renewals=<total> seconds=<s> achieved=<renewals/s> target=<N/renew> errors=<total> skipped=<total>
//
// skipped counts renewals not sent because the previous renewal of the same
// Lease was still queued or in flight (the API server could not keep up).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcoordination "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"edgewarden.io/e2e/internal/harness"
)

const (
	leaseLabel    = "edgewarden.io/lease"
	simLabel      = "edgewarden.io/leasesim"
	annFenced     = "edgewarden.io/fenced"
	namePrefix    = "edgewarden-sim-"
	holderPrefix  = "sim-"
	cleanupWindow = 2 * time.Minute
)

type sim struct {
	leases   typedcoordination.LeaseInterface
	duration int32
	cur      []*coordinationv1.Lease // the last object written, per Lease (one writer at a time)
	pending  []atomic.Bool           // queued or in flight
	renewals atomic.Int64
	errors   atomic.Int64
	skipped  atomic.Int64
	errOnce  sync.Once
}

func (s *sim) lease(i int) *coordinationv1.Lease {
	holder := fmt.Sprintf("%s%d", holderPrefix, i)
	now := metav1.NowMicro()
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s%d", namePrefix, i),
			Labels:      map[string]string{leaseLabel: "heartbeat", simLabel: "true"},
			Annotations: map[string]string{annFenced: "false"},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       &holder,
			LeaseDurationSeconds: &s.duration,
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
}

func (s *sim) fail(what string, i int, err error) {
	s.errors.Add(1)
	s.errOnce.Do(func() { log.Printf("%s %s%d: %v (further errors are only counted)", what, namePrefix, i, err) })
}

func (s *sim) create(ctx context.Context, i int) {
	l, err := s.leases.Create(ctx, s.lease(i), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if l, err = s.leases.Get(ctx, fmt.Sprintf("%s%d", namePrefix, i), metav1.GetOptions{}); err == nil {
			s.cur[i] = l
			s.renew(ctx, i)
			return
		}
	}
	if err != nil {
		s.fail("create", i, err)
		return
	}
	s.cur[i] = l
}

// renew writes a new renewTime with the resourceVersion last seen; on a
// conflict it reads the Lease again and retries once, when it is gone it
// creates it again.
func (s *sim) renew(ctx context.Context, i int) {
	for attempt := 0; attempt < 2; attempt++ {
		l := s.cur[i]
		if l == nil {
			s.create(ctx, i)
			return
		}
		l = l.DeepCopy()
		now := metav1.NowMicro()
		l.Spec.RenewTime = &now
		got, err := s.leases.Update(ctx, l, metav1.UpdateOptions{})
		switch {
		case err == nil:
			s.cur[i] = got
			s.renewals.Add(1)
			return
		case ctx.Err() != nil:
			return
		case apierrors.IsNotFound(err):
			s.cur[i] = nil
			continue
		case apierrors.IsConflict(err):
			if fresh, gerr := s.leases.Get(ctx, l.Name, metav1.GetOptions{}); gerr == nil {
				s.cur[i] = fresh
				continue
			}
		}
		s.fail("renew", i, err)
		return
	}
}

func (s *sim) deleteAll(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.leases.DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: simLabel + "=true"})
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("e2e-leasesim: ")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig (default $KUBECONFIG)")
	namespace := flag.String("namespace", "edgewarden", "namespace of the Leases")
	count := flag.Int("count", 5000, "number of simulated agents (Leases)")
	renew := flag.Duration("renew", 5*time.Second, "renew interval of each Lease (the agent's default)")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "leaseDurationSeconds written")
	duration := flag.Duration("duration", 0, "how long to renew, counted once the Leases exist; 0: until SIGTERM or SIGINT")
	workers := flag.Int("workers", 16, "concurrent writers")
	report := flag.Duration("report", 5*time.Second, "progress line interval")
	flag.Parse()
	if *count < 1 || *renew <= 0 || *workers < 1 || *leaseDuration < time.Second {
		log.Fatal("--count, --renew, --workers must be positive and --lease-duration at least 1s")
	}

	cfg, err := harness.Config(*kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	target := float64(*count) / renew.Seconds()
	cfg.UserAgent = "e2e-leasesim"
	cfg.QPS = float32(2*target + 200) // renewals plus conflict re-reads, with room
	cfg.Burst = int(cfg.QPS) + *workers
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	s := &sim{
		leases:   client.CoordinationV1().Leases(*namespace),
		duration: int32(leaseDuration.Seconds()),
		cur:      make([]*coordinationv1.Lease, *count),
		pending:  make([]atomic.Bool, *count),
	}

	// ctx ends the run (a signal, or --duration after the Leases were
	// created); the requests themselves run under req, so that one in flight
	// when the run ends finishes (within the client's 30 s timeout) instead of
	// being cut off mid-body.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	req := context.Background()
	// Deleted on every way out but SIGKILL.
	defer func() {
		t0 := time.Now()
		if err := s.deleteAll(cleanupWindow); err != nil {
			log.Printf("deleting the simulated Leases: %v", err)
			os.Exit(1)
		}
		log.Printf("deleted the simulated Leases in %.1f s", time.Since(t0).Seconds())
	}()
	if err := s.deleteAll(cleanupWindow); err != nil { // leftovers of an earlier run
		log.Printf("deleting leftover simulated Leases: %v", err)
	}

	// Create them, all workers at once.
	t0 := time.Now()
	work, wait := startWorkers(*workers, *count, func(i int) {
		if ctx.Err() == nil {
			s.create(req, i)
		}
	})
	for i := 0; i < *count; i++ {
		work <- i
	}
	close(work)
	wait()
	if ctx.Err() != nil {
		return
	}
	log.Printf("created %d Leases in %.1f s (%d errors); renewing each every %s: %.0f renewals/s",
		*count, time.Since(t0).Seconds(), s.errors.Load(), *renew, target)
	s.errors.Store(0)
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	// Renew: Lease i is due at start + i*renew/count + k*renew. A ticker hands
	// the Leases that became due to the workers; a Lease whose previous
	// renewal is still queued or in flight is skipped (and counted).
	work, wait = startWorkers(*workers, *count, func(i int) {
		if ctx.Err() == nil {
			s.renew(req, i)
		}
		s.pending[i].Store(false)
	})
	start := time.Now()
	step := *renew / time.Duration(*count)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	next, seq := start, 0 // the next due renewal: Lease seq % count at time next
	lastT, lastN := start, int64(0)
	nextReport := start.Add(*report)
	line := func(now time.Time) {
		n := s.renewals.Load()
		fmt.Printf("LEASESIM t=%.3f renewals=%d errors=%d skipped=%d rate=%.1f target=%.1f\n",
			float64(now.UnixNano())/1e9, n, s.errors.Load(), s.skipped.Load(),
			float64(n-lastN)/now.Sub(lastT).Seconds(), target)
		lastT, lastN = now, n
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			for !next.After(now) {
				i := seq % *count
				if s.pending[i].CompareAndSwap(false, true) {
					work <- i
				} else {
					s.skipped.Add(1)
				}
				seq++
				next = start.Add(time.Duration(seq/(*count))**renew + time.Duration(seq%(*count))*step)
			}
			if !now.Before(nextReport) {
				line(now)
				nextReport = nextReport.Add(*report)
			}
		}
	}
	close(work)
	wait()
	end := time.Now()
	line(end)
	el := end.Sub(start).Seconds()
	fmt.Printf("LEASESIM done renewals=%d seconds=%.1f achieved=%.1f target=%.1f errors=%d skipped=%d\n",
		s.renewals.Load(), el, float64(s.renewals.Load())/el, target, s.errors.Load(), s.skipped.Load())
}

// startWorkers runs n goroutines that call do for every index sent on the
// returned channel (buffered for size); close it, then call wait.
func startWorkers(n, size int, do func(i int)) (chan<- int, func()) {
	work := make(chan int, size)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				do(i)
			}
		}()
	}
	return work, wg.Wait
}
