// Command e2e-attacher plays the CSI external-attacher sidecar for the e2e
// driver (e2e.csi.edgewarden.io): the real attach-detach controller in
// kube-controller-manager creates a VolumeAttachment when a pod using the
// volume is scheduled on a node and deletes it when the volume must leave the
// node; this program does the attacher's half of that contract:
//
//   - a new VolumeAttachment for the driver gets the attacher's finalizer,
//     then (after --attach-delay, standing in for the ControllerPublishVolume
//     call) status.attached=true;
//   - a VolumeAttachment with a deletion timestamp is detached (after
//     --detach-delay): status.attached=false, then the finalizer is removed so
//     the API server can delete it.
//
// It refuses to mark a volume attached on a node while another
// VolumeAttachment of the same PV is still attached elsewhere (a real
// single-attach backend refuses that too), and logs it: with a correct
// control plane this never happens, and the e2e tests assert it never does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os/signal"
	"slices"
	"syscall"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"edgewarden.io/e2e/internal/harness"
)

type attacher struct {
	client      kubernetes.Interface
	lister      storagelisters.VolumeAttachmentLister
	queue       workqueue.TypedRateLimitingInterface[string]
	attachDelay time.Duration
	detachDelay time.Duration
	driver      string
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path (default $KUBECONFIG)")
	driver := flag.String("driver", harness.DriverName, "CSI driver name to attach for")
	attachDelay := flag.Duration("attach-delay", 200*time.Millisecond, "simulated ControllerPublishVolume latency")
	detachDelay := flag.Duration("detach-delay", 200*time.Millisecond, "simulated ControllerUnpublishVolume latency")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("e2e-attacher ")

	client, err := harness.Client(*kubeconfig, "e2e-attacher")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Storage().V1().VolumeAttachments()
	a := &attacher{
		client:      client,
		lister:      inf.Lister(),
		queue:       workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		attachDelay: *attachDelay,
		detachDelay: *detachDelay,
		driver:      *driver,
	}
	enqueue := func(obj any) {
		if va, ok := obj.(*storagev1.VolumeAttachment); ok && va.Spec.Attacher == a.driver {
			a.queue.Add(va.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
	}); err != nil {
		log.Fatal(err)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		log.Fatal("cache sync failed")
	}
	log.Printf("running for driver %s (attach delay %v, detach delay %v)", a.driver, a.attachDelay, a.detachDelay)
	go wait.UntilWithContext(ctx, a.worker, time.Second)
	<-ctx.Done()
	a.queue.ShutDown()
	log.Print("stopped")
}

func (a *attacher) worker(ctx context.Context) {
	for {
		key, quit := a.queue.Get()
		if quit {
			return
		}
		if err := a.sync(ctx, key); err != nil {
			log.Printf("%s: %v (retrying)", key, err)
			a.queue.AddRateLimited(key)
		} else {
			a.queue.Forget(key)
		}
		a.queue.Done(key)
	}
}

func (a *attacher) sync(ctx context.Context, name string) error {
	va, err := a.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pv := ""
	if va.Spec.Source.PersistentVolumeName != nil {
		pv = *va.Spec.Source.PersistentVolumeName
	}
	if va.DeletionTimestamp != nil {
		return a.detach(ctx, va, pv)
	}
	if !slices.Contains(va.Finalizers, harness.AttacherFinalizer) {
		return a.update(ctx, name, func(v *storagev1.VolumeAttachment) bool {
			if slices.Contains(v.Finalizers, harness.AttacherFinalizer) {
				return false
			}
			v.Finalizers = append(v.Finalizers, harness.AttacherFinalizer)
			return true
		})
	}
	if va.Status.Attached {
		return nil
	}
	// A single-attach backend refuses to attach while the volume is attached
	// elsewhere: wait for the other attachment to be detached.
	all, err := a.lister.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Name != va.Name && o.Spec.Attacher == a.driver && o.Status.Attached &&
			o.Spec.Source.PersistentVolumeName != nil && *o.Spec.Source.PersistentVolumeName == pv {
			log.Printf("attach %s (pv %s -> node %s) waits: still attached to node %s via %s",
				va.Name, pv, va.Spec.NodeName, o.Spec.NodeName, o.Name)
			a.queue.AddAfter(name, 200*time.Millisecond)
			return nil
		}
	}
	time.Sleep(a.attachDelay)
	now := metav1.Now()
	err = a.updateStatus(ctx, name, func(v *storagev1.VolumeAttachment) bool {
		if v.DeletionTimestamp != nil || v.Status.Attached {
			return false
		}
		v.Status.Attached = true
		v.Status.AttachError = nil
		v.Status.AttachmentMetadata = map[string]string{"attachedAt": now.UTC().Format(time.RFC3339Nano)}
		return true
	})
	if err == nil {
		log.Printf("attached %s: pv %s on node %s", va.Name, pv, va.Spec.NodeName)
	}
	return err
}

func (a *attacher) detach(ctx context.Context, va *storagev1.VolumeAttachment, pv string) error {
	if !slices.Contains(va.Finalizers, harness.AttacherFinalizer) {
		return nil
	}
	if va.Status.Attached {
		time.Sleep(a.detachDelay)
		if err := a.updateStatus(ctx, va.Name, func(v *storagev1.VolumeAttachment) bool {
			if !v.Status.Attached {
				return false
			}
			v.Status.Attached = false
			v.Status.DetachError = nil
			v.Status.AttachmentMetadata = nil
			return true
		}); err != nil {
			return err
		}
		log.Printf("detached %s: pv %s from node %s", va.Name, pv, va.Spec.NodeName)
	}
	err := a.update(ctx, va.Name, func(v *storagev1.VolumeAttachment) bool {
		i := slices.Index(v.Finalizers, harness.AttacherFinalizer)
		if i < 0 {
			return false
		}
		v.Finalizers = slices.Delete(v.Finalizers, i, i+1)
		return true
	})
	if err == nil {
		log.Printf("released %s (finalizer removed)", va.Name)
	}
	return err
}

func (a *attacher) update(ctx context.Context, name string, mutate func(*storagev1.VolumeAttachment) bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		v, err := a.client.StorageV1().VolumeAttachments().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !mutate(v) {
			return nil
		}
		_, err = a.client.StorageV1().VolumeAttachments().Update(ctx, v, metav1.UpdateOptions{})
		return err
	})
}

func (a *attacher) updateStatus(ctx context.Context, name string, mutate func(*storagev1.VolumeAttachment) bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		v, err := a.client.StorageV1().VolumeAttachments().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !mutate(v) {
			return nil
		}
		_, err = a.client.StorageV1().VolumeAttachments().UpdateStatus(ctx, v, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		return nil
	})
}
