// Package harness holds what the e2e harness binaries and tests share: names,
// annotations and a client built from a kubeconfig.
package harness

import (
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// DriverName is the CSI driver of the e2e StorageClass (k8s/e2e/storage.yaml).
	DriverName = "e2e.csi.edgewarden.io"
	// AttacherFinalizer is the finalizer the external-attacher would put on a
	// VolumeAttachment for DriverName ("external-attacher/" + driver with dots
	// replaced by dashes).
	AttacherFinalizer = "external-attacher/e2e-csi-edgewarden-io"

	// AnnVolumesReady is set by the runtime player when every CSI volume of a
	// pod is attached to its node; the kwok stage e2e-pod-running waits for it.
	AnnVolumesReady = "e2e.edgewarden.io/volumes-ready"
	// AnnStopped is set by the runtime player once a deleted pod's processes
	// are stopped and its volumes released; the kwok stage e2e-pod-delete
	// waits for it.
	AnnStopped = "e2e.edgewarden.io/stopped"

	// ReadinessGate is the pod condition owned by edgewarden.
	ReadinessGate = "edgewarden.io/sqledge-ready"
	// NodeCondition is the node condition owned by edgewarden.
	NodeCondition = "SQLEdgeUnhealthy"
	// Taint is the taint key owned by edgewarden.
	Taint = "edgewarden.io/sqledge-unhealthy"

	// NodeTypeLabel/NodeTypeValue select the kwok-managed fake nodes.
	NodeTypeLabel = "type"
	NodeTypeValue = "kwok"
	// SQLPodLabel selects the SQL pods the runtime player runs the stand-in for.
	SQLPodLabel = "app"
	SQLPodValue = "sqledge"
)

// Config loads a rest config from a kubeconfig path.
func Config(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig == "" {
		return nil, fmt.Errorf("no kubeconfig: pass --kubeconfig or set KUBECONFIG")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS = 200
	cfg.Burst = 400
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

// Client builds a clientset from a kubeconfig path.
func Client(kubeconfig, userAgent string) (*kubernetes.Clientset, error) {
	cfg, err := Config(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = userAgent
	return kubernetes.NewForConfig(cfg)
}

// CSIVolumeName is the unique volume name the attach-detach controller and
// the kubelet use for a CSI volume in node.status.volumesAttached/volumesInUse.
func CSIVolumeName(driver, handle string) string {
	return "kubernetes.io/csi/" + driver + "^" + handle
}

// Stamp formats a wall-clock time with milliseconds, for logs.
func Stamp(t time.Time) string { return t.Format("15:04:05.000") }
