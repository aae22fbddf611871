package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	k8sjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The files under test, relative to this package.
var (
	deployDir      = filepath.Join("..", "..", "deploy")
	k8sDir         = filepath.Join(deployDir, "k8s")
	natsValuesFile = "nats-values.yaml" // in k8sDir: Helm values, not a manifest
)

// pendingSettings are env names deploy/ sets before campaignd reads them.
var pendingSettings = map[string]bool{}

// placeholderSecret stands for a value deploy/ leaves to the operator (a Secret key, a
// ${VAR} of the compose file); it is valid for every setting it may stand for.
const placeholderSecret = "placeholder-0123456789abcdef0123456789abcdef"

// k8sObjects are the typed objects of every manifest in deploy/k8s, by name.
type k8sObjects struct {
	configMaps  map[string]*corev1.ConfigMap
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

// loadK8s decodes every document of deploy/k8s/*.yaml (but the NATS values) strictly
// into the Kubernetes API type of its apiVersion and kind: an unknown kind, an unknown or
// duplicate field, a misspelt key or a value of the wrong type fails.
func loadK8s(t *testing.T) k8sObjects {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, policyv1.AddToScheme} {
		require.NoError(t, add(scheme))
	}
	decoder := k8sjson.NewSerializerWithOptions(k8sjson.DefaultMetaFactory, scheme, scheme,
		k8sjson.SerializerOptions{Yaml: true, Strict: true})

	objs := k8sObjects{configMaps: map[string]*corev1.ConfigMap{}, deployments: map[string]*appsv1.Deployment{},
		services: map[string]*corev1.Service{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}}
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		if filepath.Base(file) == natsValuesFile {
			continue
		}
		f, err := os.Open(file)
		require.NoError(t, err)
		reader := k8syaml.NewYAMLReader(bufio.NewReader(f))
		for n := 1; ; n++ {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "%s: document %d", file, n)
			if len(bytes.TrimSpace(stripYAMLComments(doc))) == 0 {
				continue
			}
			where := file + ": document " + strconv.Itoa(n)
			obj, gvk, err := decoder.Decode(doc, nil, nil)
			if runtime.IsNotRegisteredError(err) {
				t.Fatalf("%s: %v: not a kind this test knows; add its API group to the scheme and checks here", where, err)
			}
			require.NoError(t, err, "%s does not decode strictly as a Kubernetes object", where)
			meta, ok := obj.(metav1.Object)
			require.True(t, ok, "%s: %s has no metadata", where, gvk)
			name := meta.GetName()
			require.NotEmpty(t, name, "%s: %s has no name", where, gvk)
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				addObject(t, objs.configMaps, name, o, where)
			case *appsv1.Deployment:
				addObject(t, objs.deployments, name, o, where)
			case *corev1.Service:
				addObject(t, objs.services, name, o, where)
			case *autoscalingv2.HorizontalPodAutoscaler:
				addObject(t, objs.hpas, name, o, where)
			case *policyv1.PodDisruptionBudget:
				addObject(t, objs.pdbs, name, o, where)
			default:
				t.Fatalf("%s: %s %q is not a kind this test checks; teach it the kind", where, gvk, name)
			}
		}
		require.NoError(t, f.Close())
	}
	return objs
}

func addObject[T runtime.Object](t *testing.T, m map[string]T, name string, o T, where string) {
	t.Helper()
	_, dup := m[name]
	require.False(t, dup, "%s: a second %s named %q", where, o.GetObjectKind().GroupVersionKind().Kind, name)
	m[name] = o
}

var yamlComment = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripYAMLComments(doc []byte) []byte { return yamlComment.ReplaceAll(doc, nil) }

// campaigndContainer is the container named campaignd of a Deployment.
func campaigndContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "campaignd" {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container named campaignd", d.Name)
	return corev1.Container{}
}

// imageEnv is the environment the Dockerfile's ENV lines set.
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	require.NoError(t, err)
	env := map[string]string{}
	joined := strings.ReplaceAll(string(src), "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, ok := strings.Cut(kv, "=")
			require.True(t, ok, "Dockerfile: ENV %q: write NAME=value", kv)
			env[k] = v
		}
	}
	return env
}

// envNames is what an environment sets, by name, for the settings check.
type envNames map[string]string // name -> where it is set

// containerEnv is a campaignd container's environment as Kubernetes builds it: the
// image's, then envFrom ConfigMaps, then env. Values from Secrets are placeholders. It
// records where each name comes from in names.
func containerEnv(t *testing.T, objs k8sObjects, d *appsv1.Deployment, names envNames) map[string]string {
	t.Helper()
	c := campaigndContainer(t, d)
	env := imageEnv(t)
	for k := range env {
		names[k] = "deploy/Dockerfile ENV"
	}
	for _, from := range c.EnvFrom {
		require.Nil(t, from.SecretRef, "Deployment %s: envFrom a Secret hides its names; use env with secretKeyRef", d.Name)
		require.NotNil(t, from.ConfigMapRef, "Deployment %s: envFrom without a ConfigMap", d.Name)
		cm, ok := objs.configMaps[from.ConfigMapRef.Name]
		require.True(t, ok, "Deployment %s: envFrom ConfigMap %q is not in deploy/k8s", d.Name, from.ConfigMapRef.Name)
		for k, v := range cm.Data {
			env[from.Prefix+k] = v
			names[from.Prefix+k] = "ConfigMap " + cm.Name
		}
	}
	for _, e := range c.Env {
		names[e.Name] = "Deployment " + d.Name
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			require.Equal(t, e.Name, ref.Key, "Deployment %s: %s comes from Secret key %q; name the key like the variable (README's kubectl create secret)", d.Name, e.Name, ref.Key)
			env[e.Name] = placeholderSecret
			if e.Name == "DATABASE_URL" {
				env[e.Name] = "postgres://campaign:" + placeholderSecret + "@postgres:5432/campaign"
			}
		default:
			t.Fatalf("Deployment %s: %s: only values and secretKeyRef are expected", d.Name, e.Name)
		}
	}
	return env
}

// campaigndConfig is the Config campaignd builds from env; a value it refuses fails.
func campaigndConfig(t *testing.T, where string, env map[string]string) Config {
	t.Helper()
	var stderr bytes.Buffer
	cfg, err := loadConfig(nil, func(k string) string { return env[k] }, &stderr)
	require.NoError(t, err, "%s: campaignd refuses its environment\n%s", where, stderr.String())
	return cfg
}

// campaigndDeployments are the Deployments of deploy/k8s by CAMPAIGN_MODE.
func campaigndDeployments(t *testing.T, objs k8sObjects) map[string]*appsv1.Deployment {
	t.Helper()
	byMode := map[string]*appsv1.Deployment{}
	for _, d := range objs.deployments {
		cfg := campaigndConfig(t, "Deployment "+d.Name, containerEnv(t, objs, d, envNames{}))
		require.NotContains(t, byMode, cfg.Mode, "two Deployments in mode %s", cfg.Mode)
		byMode[cfg.Mode] = d
	}
	return byMode
}

func podSelects(t *testing.T, sel *metav1.LabelSelector, d *appsv1.Deployment) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err)
	return !s.Empty() && s.Matches(labels.Set(d.Spec.Template.Labels))
}

// TestDeployManifestsAreValidKubernetesObjects decodes every manifest strictly and checks
// what the API server would refuse or silently break: a Deployment selecting pods it
// does not template, a probe, mount or Service on a port or volume that does not exist,
// an HPA, PDB or envFrom pointing at nothing.
func TestDeployManifestsAreValidKubernetesObjects(t *testing.T) {
	objs := loadK8s(t)
	require.NotEmpty(t, objs.configMaps, "no ConfigMap")
	require.NotEmpty(t, objs.services, "no Service")
	require.NotEmpty(t, objs.hpas, "no HorizontalPodAutoscaler")
	require.NotEmpty(t, objs.pdbs, "no PodDisruptionBudget")
	byMode := campaigndDeployments(t, objs)
	require.Contains(t, byMode, modeIngress, "no Deployment in CAMPAIGN_MODE=ingress")
	require.Contains(t, byMode, modeEngine, "no Deployment in CAMPAIGN_MODE=engine")

	for _, d := range objs.deployments {
		require.True(t, podSelects(t, d.Spec.Selector, d), "Deployment %s: selector does not match its pod labels", d.Name)
		for _, other := range objs.deployments {
			if other != d {
				require.False(t, podSelects(t, d.Spec.Selector, other), "Deployment %s also selects the pods of %s", d.Name, other.Name)
			}
		}
		pod := d.Spec.Template.Spec
		volumes := map[string]bool{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = true
		}
		for _, c := range pod.Containers {
			for _, m := range c.VolumeMounts {
				require.True(t, volumes[m.Name], "Deployment %s: container %s mounts the missing volume %q", d.Name, c.Name, m.Name)
			}
			for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p != nil && p.HTTPGet != nil {
					_, ok := containerPort(c, p.HTTPGet.Port.String())
					require.True(t, ok, "Deployment %s: %s probe on port %s, which container %s does not have", d.Name, kind, p.HTTPGet.Port.String(), c.Name)
				}
			}
		}
	}
	for _, s := range objs.services {
		var selected []*appsv1.Deployment
		for _, d := range objs.deployments {
			if podSelects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d) {
				selected = append(selected, d)
			}
		}
		require.NotEmpty(t, selected, "Service %s selects no pods", s.Name)
		for _, d := range selected {
			for _, p := range s.Spec.Ports {
				_, ok := containerPort(campaigndContainer(t, d), p.TargetPort.String())
				require.True(t, ok, "Service %s: targetPort %s is not a port of Deployment %s", s.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	for _, h := range objs.hpas {
		ref := h.Spec.ScaleTargetRef
		require.Equal(t, "apps/v1", ref.APIVersion, "HPA %s", h.Name)
		require.Equal(t, "Deployment", ref.Kind, "HPA %s", h.Name)
		require.Contains(t, objs.deployments, ref.Name, "HPA %s scales a Deployment that is not in deploy/k8s", h.Name)
	}
	for _, p := range objs.pdbs {
		var selected int
		for _, d := range objs.deployments {
			if podSelects(t, p.Spec.Selector, d) {
				selected++
			}
		}
		require.Equal(t, 1, selected, "PodDisruptionBudget %s must select the pods of exactly one Deployment", p.Name)
	}
}

// containerPort finds a container port by name or number.
func containerPort(c corev1.Container, port string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// dockerfileUser is the numeric uid and gid of the Dockerfile's last USER line.
func dockerfileUser(t *testing.T) (uid, gid int64) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^USER\s+(\S+)\s*$`).FindAllStringSubmatch(string(src), -1)
	require.NotEmpty(t, m, "Dockerfile has no USER")
	user, group, _ := strings.Cut(m[len(m)-1][1], ":")
	uid, err = strconv.ParseInt(user, 10, 64)
	require.NoError(t, err, "Dockerfile: USER %s must be numeric, or Kubernetes cannot check runAsNonRoot", user)
	gid, err = strconv.ParseInt(group, 10, 64)
	require.NoError(t, err, "Dockerfile: USER %s must name a numeric group", m[len(m)-1][1])
	require.NotZero(t, uid, "Dockerfile: USER must not be root")
	return uid, gid
}

// TestDeployPodsRunAsTheImagesNumericNonRootUser checks every pod runs as the
// Dockerfile's numeric user (so the kubelet can verify runAsNonRoot), on a read-only root
// with CAMPAIGN_DATA_DIR on an emptyDir, without capabilities, privilege escalation or a
// seccomp-free profile.
func TestDeployPodsRunAsTheImagesNumericNonRootUser(t *testing.T) {
	uid, gid := dockerfileUser(t)
	objs := loadK8s(t)
	for _, d := range objs.deployments {
		pod := d.Spec.Template.Spec
		sc := pod.SecurityContext
		require.NotNil(t, sc, "Deployment %s: no pod securityContext", d.Name)
		require.Equal(t, ptrOf(true), sc.RunAsNonRoot, "Deployment %s: runAsNonRoot", d.Name)
		require.Equal(t, ptrOf(uid), sc.RunAsUser, "Deployment %s: runAsUser must be the Dockerfile's USER", d.Name)
		require.Equal(t, ptrOf(gid), sc.RunAsGroup, "Deployment %s: runAsGroup must be the Dockerfile's group", d.Name)
		require.Equal(t, ptrOf(gid), sc.FSGroup, "Deployment %s: fsGroup (volumes writable by the group)", d.Name)
		require.NotNil(t, sc.SeccompProfile, "Deployment %s: seccompProfile", d.Name)
		require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type, "Deployment %s: seccompProfile", d.Name)

		c := campaigndContainer(t, d)
		csc := c.SecurityContext
		require.NotNil(t, csc, "Deployment %s: no container securityContext", d.Name)
		require.Equal(t, ptrOf(false), csc.AllowPrivilegeEscalation, "Deployment %s: allowPrivilegeEscalation", d.Name)
		require.Equal(t, ptrOf(true), csc.ReadOnlyRootFilesystem, "Deployment %s: readOnlyRootFilesystem", d.Name)
		require.NotNil(t, csc.Capabilities, "Deployment %s: capabilities", d.Name)
		require.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop, "Deployment %s: drop all capabilities", d.Name)
		require.Empty(t, csc.Capabilities.Add, "Deployment %s: no capability added", d.Name)
		require.Nil(t, csc.RunAsUser, "Deployment %s: the user is set once, on the pod", d.Name)
		require.Nil(t, csc.Privileged, "Deployment %s: privileged", d.Name)

		cfg := campaigndConfig(t, "Deployment "+d.Name, containerEnv(t, objs, d, envNames{}))
		var dataVolume string
		for _, m := range c.VolumeMounts {
			if filepath.Clean(m.MountPath) == filepath.Clean(cfg.DataDir) {
				require.False(t, m.ReadOnly, "Deployment %s: CAMPAIGN_DATA_DIR mounted read-only", d.Name)
				dataVolume = m.Name
			}
		}
		require.NotEmpty(t, dataVolume, "Deployment %s: CAMPAIGN_DATA_DIR=%s is on the read-only root; mount an emptyDir there", d.Name, cfg.DataDir)
		for _, v := range pod.Volumes {
			if v.Name == dataVolume {
				require.NotNil(t, v.EmptyDir, "Deployment %s: CAMPAIGN_DATA_DIR is not an emptyDir", d.Name)
			}
		}
	}
}

func ptrOf[T any](v T) *T { return &v }

// TestDeployProbesMeanTheRightThingPerMode checks each mode's probes: startup and
// liveness on /healthz (the process is alive; a Postgres or NATS outage must not restart
// pods), a startup allowance of a minute at least, readiness on /readyz (which per mode
// means: ingress, NATS and streams and keys but not Postgres; engine, NATS, Postgres,
// campaigns and partitions), all on the port campaignd listens on.
func TestDeployProbesMeanTheRightThingPerMode(t *testing.T) {
	objs := loadK8s(t)
	for mode, d := range campaigndDeployments(t, objs) {
		require.Contains(t, []string{modeIngress, modeEngine}, mode, "Deployment %s: a cluster runs ingress and engine, not %s", d.Name, mode)
		c := campaigndContainer(t, d)
		cfg := campaigndConfig(t, "Deployment "+d.Name, containerEnv(t, objs, d, envNames{}))
		host, port, err := net.SplitHostPort(cfg.HTTPAddr)
		require.NoError(t, err)
		require.Contains(t, []string{"0.0.0.0", "", "::"}, host, "Deployment %s: CAMPAIGN_HTTP_ADDR=%s is not reachable by the kubelet", d.Name, cfg.HTTPAddr)

		for _, tc := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{
			{"startupProbe", c.StartupProbe, "/healthz"},
			{"livenessProbe", c.LivenessProbe, "/healthz"},
			{"readinessProbe", c.ReadinessProbe, "/readyz"},
		} {
			require.NotNil(t, tc.probe, "Deployment %s (%s): no %s", d.Name, mode, tc.kind)
			require.NotNil(t, tc.probe.HTTPGet, "Deployment %s: %s is not an HTTP GET", d.Name, tc.kind)
			require.Equal(t, tc.path, tc.probe.HTTPGet.Path, "Deployment %s (%s): %s", d.Name, mode, tc.kind)
			n, ok := containerPort(c, tc.probe.HTTPGet.Port.String())
			require.True(t, ok, "Deployment %s: %s port", d.Name, tc.kind)
			require.Equal(t, port, strconv.Itoa(int(n)), "Deployment %s: %s is not on CAMPAIGN_HTTP_ADDR's port", d.Name, tc.kind)
		}
		period, failures := c.StartupProbe.PeriodSeconds, c.StartupProbe.FailureThreshold
		if period == 0 {
			period = 10 // Kubernetes' defaults
		}
		if failures == 0 {
			failures = 3
		}
		allowance := time.Duration(period*failures) * time.Second
		require.GreaterOrEqual(t, allowance, time.Minute, "Deployment %s: the startupProbe gives start-up %s; allow a minute at least", d.Name, allowance)
	}
}

// TestDeployGracePeriodExceedsShutdownTimeout checks Kubernetes and compose wait longer
// than campaignd's CAMPAIGN_SHUTDOWN_TIMEOUT (plus any preStop sleep) before SIGKILL, so
// SIGTERM can finish in-flight work and hand partitions over.
func TestDeployGracePeriodExceedsShutdownTimeout(t *testing.T) {
	objs := loadK8s(t)
	for _, d := range objs.deployments {
		cfg := campaigndConfig(t, "Deployment "+d.Name, containerEnv(t, objs, d, envNames{}))
		grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		require.NotNil(t, grace, "Deployment %s: set terminationGracePeriodSeconds", d.Name)
		need := cfg.ShutdownTimeout
		if pre := campaigndContainer(t, d).Lifecycle; pre != nil && pre.PreStop != nil {
			require.NotNil(t, pre.PreStop.Sleep, "Deployment %s: preStop is a sleep (the image has no shell)", d.Name)
			need += time.Duration(pre.PreStop.Sleep.Seconds) * time.Second
		}
		require.Greater(t, time.Duration(*grace)*time.Second, need,
			"Deployment %s: terminationGracePeriodSeconds must exceed preStop + CAMPAIGN_SHUTDOWN_TIMEOUT", d.Name)
	}
	c := loadCompose(t)
	for name, s := range c.campaignd(t) {
		cfg := campaigndConfig(t, "compose service "+name, s.env(t))
		grace, err := time.ParseDuration(s.StopGracePeriod)
		require.NoError(t, err, "compose service %s: stop_grace_period", name)
		require.Greater(t, grace, cfg.ShutdownTimeout, "compose service %s: stop_grace_period must exceed CAMPAIGN_SHUTDOWN_TIMEOUT", name)
	}
}

// TestDeployIngressScalesOnCPUAndEnginesShareThePartitions checks the scale-out shape: an
// HPA on CPU owns the ingress replica count (apply does not reset it), Services send
// traffic to ingress pods only, engines run two or more (no more than the partitions) on
// the same NATS, every pod has requests and a memory limit and is scraped, and every
// Deployment has a PDB that still lets a node drain.
func TestDeployIngressScalesOnCPUAndEnginesShareThePartitions(t *testing.T) {
	objs := loadK8s(t)
	byMode := campaigndDeployments(t, objs)
	ingress, engine := byMode[modeIngress], byMode[modeEngine]
	require.NotNil(t, ingress)
	require.NotNil(t, engine)

	var hpa *autoscalingv2.HorizontalPodAutoscaler
	for _, h := range objs.hpas {
		if h.Spec.ScaleTargetRef.Name == ingress.Name {
			hpa = h
		}
	}
	require.NotNil(t, hpa, "no HPA scales Deployment %s", ingress.Name)
	require.NotNil(t, hpa.Spec.MinReplicas)
	require.GreaterOrEqual(t, *hpa.Spec.MinReplicas, int32(2), "HPA %s: two ingress pods at least", hpa.Name)
	require.Greater(t, hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas, "HPA %s", hpa.Name)
	var onCPU bool
	for _, m := range hpa.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
			onCPU = m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil
		}
	}
	require.True(t, onCPU, "HPA %s: scale on CPU utilization", hpa.Name)
	require.Nil(t, ingress.Spec.Replicas, "Deployment %s: leave replicas to the HPA, or each kubectl apply resets it", ingress.Name)

	ingressCfg := campaigndConfig(t, "Deployment "+ingress.Name, containerEnv(t, objs, ingress, envNames{}))
	engineCfg := campaigndConfig(t, "Deployment "+engine.Name, containerEnv(t, objs, engine, envNames{}))
	require.NotEmpty(t, ingressCfg.NATSURL, "Deployment %s: NATS_URL", ingress.Name)
	require.Equal(t, ingressCfg.NATSURL, engineCfg.NATSURL, "ingress and engine must use the same NATS")
	require.NotEmpty(t, ingressCfg.DatabaseURL, "Deployment %s: DATABASE_URL (the admin API)", ingress.Name)
	require.NotEmpty(t, engineCfg.DatabaseURL, "Deployment %s: DATABASE_URL", engine.Name)
	require.NotNil(t, engine.Spec.Replicas, "Deployment %s: replicas", engine.Name)
	require.GreaterOrEqual(t, *engine.Spec.Replicas, int32(2), "Deployment %s: two engines, so partitions have somewhere to move", engine.Name)
	require.LessOrEqual(t, int(*engine.Spec.Replicas), engineCfg.Partitions, "Deployment %s: more engines than partitions", engine.Name)

	for _, d := range []*appsv1.Deployment{ingress, engine} {
		res := campaigndContainer(t, d).Resources
		require.False(t, res.Requests.Cpu().IsZero(), "Deployment %s: requests.cpu (the HPA and the scheduler need it)", d.Name)
		require.False(t, res.Requests.Memory().IsZero(), "Deployment %s: requests.memory", d.Name)
		require.False(t, res.Limits.Memory().IsZero(), "Deployment %s: limits.memory (campaignd sizes its heap from it)", d.Name)
		require.GreaterOrEqual(t, res.Limits.Memory().Cmp(*res.Requests.Memory()), 0, "Deployment %s: memory limit below the request", d.Name)
		require.Equal(t, "true", d.Spec.Template.Annotations["prometheus.io/scrape"], "Deployment %s: scrape annotation", d.Name)
		require.Equal(t, "/metrics", d.Spec.Template.Annotations["prometheus.io/path"], "Deployment %s", d.Name)

		var pdb *policyv1.PodDisruptionBudget
		for _, p := range objs.pdbs {
			if podSelects(t, p.Spec.Selector, d) {
				pdb = p
			}
		}
		require.NotNil(t, pdb, "Deployment %s has no PodDisruptionBudget", d.Name)
		least := *hpa.Spec.MinReplicas
		if d.Spec.Replicas != nil {
			least = *d.Spec.Replicas
		}
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			require.Nil(t, pdb.Spec.MinAvailable, "PodDisruptionBudget %s: minAvailable or maxUnavailable, not both", pdb.Name)
			n, err := intOrPercent(pdb.Spec.MaxUnavailable.String(), least)
			require.NoError(t, err)
			require.Greater(t, n, 0, "PodDisruptionBudget %s blocks every drain", pdb.Name)
		case pdb.Spec.MinAvailable != nil:
			n, err := intOrPercent(pdb.Spec.MinAvailable.String(), least)
			require.NoError(t, err)
			require.Less(t, n, int(least), "PodDisruptionBudget %s blocks every drain", pdb.Name)
		default:
			t.Fatalf("PodDisruptionBudget %s: no budget", pdb.Name)
		}
	}

	for _, s := range objs.services {
		require.False(t, podSelects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, engine),
			"Service %s sends traffic to engine pods; the API is the ingress Deployment", s.Name)
	}
}

func intOrPercent(v string, of int32) (int, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.Atoi(p)
		return n * int(of) / 100, err
	}
	return strconv.Atoi(v)
}

// knownSettings are the env names campaignd reads, with those being added.
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	for name := range pendingSettings {
		require.False(t, known[name], "%s is a setting now: remove it from pendingSettings in deploy_test.go", name)
		known[name] = true
	}
	return known
}

// TestDeployEnvNamesAreCampaigndSettings checks every variable deploy/ gives campaignd
// (Dockerfile, Kubernetes env, ConfigMap keys, Secret keys, compose) is one campaignd
// reads: a misspelt or retired name would be ignored without a word.
func TestDeployEnvNamesAreCampaigndSettings(t *testing.T) {
	known := knownSettings(t)
	names := envNames{}
	objs := loadK8s(t)
	for _, d := range objs.deployments {
		containerEnv(t, objs, d, names)
	}
	for _, cm := range objs.configMaps {
		for k := range cm.Data {
			names[k] = "ConfigMap " + cm.Name
		}
	}
	for name, s := range loadCompose(t).campaignd(t) {
		for k := range s.Environment {
			names[k] = "compose service " + name
		}
	}
	require.NotEmpty(t, names)
	var unknown []string
	for name, where := range names {
		if !known[name] {
			unknown = append(unknown, name+" ("+where+")")
		}
	}
	sort.Strings(unknown)
	require.Empty(t, unknown, "deploy/ sets variables campaignd does not read (cmd/campaignd/config.go settings)")
}

// TestDeployNATSValuesRunAThreeNodeJetStreamCluster checks the NATS chart values: a
// cluster of three with JetStream on a PVC per server (file storage, bounded below the
// volume), and that campaignd's NATS_URL lists each of those servers.
func TestDeployNATSValuesRunAThreeNodeJetStreamCluster(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(k8sDir, natsValuesFile))
	require.NoError(t, err)
	var values map[string]any
	require.NoError(t, yaml.Unmarshal(src, &values))
	get := func(path string) any {
		var v any = values
		for _, key := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			require.True(t, ok, "nats values: %s: %s is not a map", path, key)
			v = m[key]
		}
		return v
	}
	for _, path := range []string{"config.cluster.enabled", "config.jetstream.enabled", "config.jetstream.fileStore.enabled",
		"config.jetstream.fileStore.pvc.enabled", "podDisruptionBudget.enabled"} {
		require.Equal(t, true, get(path), "nats values: %s", path)
	}
	replicas, ok := get("config.cluster.replicas").(int)
	require.True(t, ok, "nats values: config.cluster.replicas")
	require.Equal(t, 3, replicas, "nats values: config.cluster.replicas")
	size, err := resource.ParseQuantity(get("config.jetstream.fileStore.pvc.size").(string))
	require.NoError(t, err, "nats values: config.jetstream.fileStore.pvc.size")
	if maxSize, ok := get("config.jetstream.fileStore.maxSize").(string); ok {
		q, err := resource.ParseQuantity(maxSize)
		require.NoError(t, err, "nats values: config.jetstream.fileStore.maxSize")
		require.Less(t, q.Cmp(size), 0, "nats values: config.jetstream.fileStore.maxSize must leave room on the volume")
	}

	// The chart names its pods <release>-<i> behind the headless Service <release>-headless;
	// the release is "nats" (see the file's helm install). Every campaignd lists them all
	// and keeps its streams on all of them.
	objs := loadK8s(t)
	var want []string
	for i := range replicas {
		want = append(want, "nats-"+strconv.Itoa(i)+".nats-headless:4222")
	}
	for _, d := range objs.deployments {
		env := containerEnv(t, objs, d, envNames{})
		cfg := campaigndConfig(t, "Deployment "+d.Name, env)
		require.ElementsMatch(t, want, natsHosts(t, cfg.NATSURL), "Deployment %s: NATS_URL must list every server of the chart's StatefulSet", d.Name)
		require.Equal(t, strconv.Itoa(replicas), env["CAMPAIGN_STREAM_REPLICAS"], "Deployment %s: CAMPAIGN_STREAM_REPLICAS", d.Name)
	}
}

// natsHosts are the host:port of each server of a comma-separated NATS_URL.
func natsHosts(t *testing.T, list string) []string {
	t.Helper()
	var hosts []string
	for _, s := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		require.NoError(t, err, "NATS_URL %q", list)
		require.Equal(t, "nats", u.Scheme, "NATS_URL %q", list)
		hosts = append(hosts, u.Host)
	}
	return hosts
}

// compose is deploy/docker-compose.yml (anchors and merge keys resolved).
type compose struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	Build           *composeBuild     `yaml:"build"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	DependsOn       yaml.Node         `yaml:"depends_on"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(deployDir, "docker-compose.yml"))
	require.NoError(t, err)
	var c compose
	require.NoError(t, yaml.Unmarshal(src, &c), "deploy/docker-compose.yml")
	require.NotEmpty(t, c.Services)
	return c
}

// campaignd are the services built from deploy/Dockerfile.
func (c compose) campaignd(t *testing.T) map[string]composeService {
	t.Helper()
	out := map[string]composeService{}
	for name, s := range c.Services {
		if s.Build != nil && filepath.Clean(s.Build.Dockerfile) == filepath.Join("deploy", "Dockerfile") {
			out[name] = s
		}
	}
	require.NotEmpty(t, out, "no compose service builds deploy/Dockerfile")
	return out
}

var composeVar = regexp.MustCompile(`\$\{[^}]*\}`)

// env is the service's environment over the image's, with ${...} as placeholders.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	env := imageEnv(t)
	for k, v := range s.Environment {
		env[k] = composeVar.ReplaceAllString(v, placeholderSecret)
	}
	return env
}

func (s composeService) dependsOn(t *testing.T) []string {
	t.Helper()
	switch s.DependsOn.Kind {
	case 0:
		return nil
	case yaml.SequenceNode:
		var l []string
		require.NoError(t, s.DependsOn.Decode(&l))
		return l
	default:
		var m map[string]any
		require.NoError(t, s.DependsOn.Decode(&m))
		var l []string
		for k := range m {
			l = append(l, k)
		}
		return l
	}
}

// mounts are a service's bind mounts from deploy/, target -> source (relative to deploy).
func (s composeService) mounts() map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], ".") {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

// flagValue is the argument after flag in a command.
func flagValue(cmd []string, flag string) (string, bool) {
	i := slices.Index(cmd, flag)
	if i < 0 || i+1 >= len(cmd) {
		return "", false
	}
	return cmd[i+1], true
}

// TestDeployComposeRunsAClusterWithMonitoring checks deploy/docker-compose.yml without
// Docker: three NATS servers with JetStream routed to each other, Postgres, two campaignd
// that campaignd's config accepts and that reach all three NATS servers, Prometheus
// scraping them with the alert rules, and Grafana with the datasource and the dashboard,
// every mounted file present in deploy/.
func TestDeployComposeRunsAClusterWithMonitoring(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for target, source := range s.mounts() {
			_, err := os.Stat(filepath.Join(deployDir, source))
			require.NoError(t, err, "compose service %s mounts %s at %s", name, source, target)
		}
		for _, v := range s.Volumes {
			if src, _, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				require.Contains(t, c.Volumes, src, "compose service %s: volume %s is not declared", name, src)
			}
		}
		for _, dep := range s.dependsOn(t) {
			require.Contains(t, c.Services, dep, "compose service %s depends on a missing service", name)
		}
	}

	// NATS: three servers, JetStream, one cluster, each routed to the others.
	var natsServices []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "nats:2.") {
			natsServices = append(natsServices, name)
		}
	}
	sort.Strings(natsServices)
	require.Len(t, natsServices, 3, "compose: three NATS servers")
	serverNames := map[string]bool{}
	for _, name := range natsServices {
		// What nats-server makes of the service's command line and configuration file.
		o := composeNATSOptions(t, name, c.Services[name])
		require.True(t, o.JetStream, "compose service %s: JetStream", name)
		require.NotEmpty(t, o.StoreDir, "compose service %s: a JetStream store dir", name)
		require.Contains(t, c.Services[name].volumeTargets(), o.StoreDir, "compose service %s: the store dir %s must be a volume", name, o.StoreDir)
		require.NotEmpty(t, o.ServerName, "compose service %s: a stable server name (-n), which clustered JetStream needs", name)
		serverNames[o.ServerName] = true
		require.Equal(t, "campaign", o.Cluster.Name, "compose service %s: cluster name", name)
		require.NotZero(t, o.Cluster.Port, "compose service %s: cluster port", name)
		var routed []string
		for _, u := range o.Routes {
			routed = append(routed, u.Hostname())
		}
		for _, other := range natsServices {
			if other != name {
				require.Contains(t, routed, other, "compose service %s does not route to %s", name, other)
			}
		}
		requireNATSIdentities(t, "compose service "+name, o)
	}
	require.Len(t, serverNames, 3, "compose: NATS server names must differ")

	var postgres string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "postgres:") {
			postgres = name
		}
	}
	require.NotEmpty(t, postgres, "compose: a Postgres service")

	// campaignd: two replicas, on every NATS server and the Postgres, API somewhere.
	replicas := c.campaignd(t)
	require.GreaterOrEqual(t, len(replicas), 2, "compose: two campaignd replicas")
	hostPorts := map[string]string{}
	var targets []string
	var api bool
	for name, s := range replicas {
		cfg := campaigndConfig(t, "compose service "+name, s.env(t))
		api = api || cfg.Mode != modeEngine
		var hosts []string
		for _, h := range natsHosts(t, cfg.NATSURL) {
			host, port, err := net.SplitHostPort(h)
			require.NoError(t, err)
			require.Equal(t, "4222", port, "compose service %s: NATS_URL", name)
			hosts = append(hosts, host)
		}
		require.ElementsMatch(t, natsServices, hosts, "compose service %s: NATS_URL must list the three NATS services", name)
		require.Equal(t, strconv.Itoa(len(natsServices)), s.env(t)["CAMPAIGN_STREAM_REPLICAS"], "compose service %s: CAMPAIGN_STREAM_REPLICAS", name)
		db, err := url.Parse(cfg.DatabaseURL)
		require.NoError(t, err)
		require.Equal(t, postgres, db.Hostname(), "compose service %s: DATABASE_URL", name)
		require.Subset(t, s.dependsOn(t), append(slices.Clone(natsServices), postgres), "compose service %s: depends_on", name)
		_, port, err := net.SplitHostPort(cfg.HTTPAddr)
		require.NoError(t, err)
		targets = append(targets, name+":"+port)
		for _, p := range s.Ports {
			host, _, _ := strings.Cut(p, ":")
			require.NotContains(t, hostPorts, host, "compose: host port %s used by %s and %s", host, name, hostPorts[host])
			hostPorts[host] = name
		}
	}
	require.True(t, api, "compose: no campaignd serves the API")

	// Prometheus: scrapes every campaignd as job "campaignd" (alerts.yml's up{job=...}),
	// evaluates alerts.yml.
	var prometheus string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "prom/prometheus:") {
			prometheus = name
		}
	}
	require.NotEmpty(t, prometheus, "compose: a Prometheus service")
	pm := c.Services[prometheus].mounts()
	configPath, ok := flagValue(strings.Fields(strings.ReplaceAll(strings.Join(c.Services[prometheus].Command, " "), "=", " ")), "--config.file")
	require.True(t, ok, "compose service %s: --config.file", prometheus)
	require.Contains(t, pm, configPath, "compose service %s: its config file is not mounted from deploy/", prometheus)
	src, err := os.ReadFile(filepath.Join(deployDir, pm[configPath]))
	require.NoError(t, err)
	var promConfig struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(src, &promConfig))
	var rulesMounted bool
	for _, rf := range promConfig.RuleFiles {
		require.Contains(t, pm, rf, "prometheus: rule file %s is not mounted", rf)
		rulesMounted = rulesMounted || filepath.Clean(pm[rf]) == filepath.Join("prometheus", "alerts.yml")
	}
	require.True(t, rulesMounted, "prometheus: alerts.yml is not among the rule files")
	var scraped []string
	for _, sc := range promConfig.ScrapeConfigs {
		if sc.JobName == "campaignd" {
			require.Contains(t, []string{"", "/metrics"}, sc.MetricsPath)
			for _, st := range sc.StaticConfigs {
				scraped = append(scraped, st.Targets...)
			}
		}
	}
	require.ElementsMatch(t, targets, scraped, "prometheus: job campaignd must scrape every campaignd")

	// Grafana: a Prometheus datasource on the compose Prometheus, and the dashboard.
	var grafana string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "grafana/grafana:") {
			grafana = name
		}
	}
	require.NotEmpty(t, grafana, "compose: a Grafana service")
	gm := c.Services[grafana].mounts()
	var datasourceOK, dashboardOK bool
	for target, source := range gm {
		switch filepath.Dir(target) {
		case "/etc/grafana/provisioning/datasources":
			src, err := os.ReadFile(filepath.Join(deployDir, source))
			require.NoError(t, err)
			var ds struct {
				Datasources []struct {
					Type string `yaml:"type"`
					URL  string `yaml:"url"`
				} `yaml:"datasources"`
			}
			require.NoError(t, yaml.Unmarshal(src, &ds))
			for _, d := range ds.Datasources {
				u, err := url.Parse(d.URL)
				require.NoError(t, err)
				datasourceOK = datasourceOK || (d.Type == "prometheus" && u.Hostname() == prometheus)
			}
		case "/etc/grafana/provisioning/dashboards":
			src, err := os.ReadFile(filepath.Join(deployDir, source))
			require.NoError(t, err)
			var providers struct {
				Providers []struct {
					Options struct {
						Path string `yaml:"path"`
					} `yaml:"options"`
				} `yaml:"providers"`
			}
			require.NoError(t, yaml.Unmarshal(src, &providers))
			for _, p := range providers.Providers {
				for target, source := range gm {
					if filepath.Dir(target) == filepath.Clean(p.Options.Path) && filepath.Clean(source) == filepath.Join("grafana", "campaign-manager.json") {
						dashboardOK = true
					}
				}
			}
		}
	}
	require.True(t, datasourceOK, "grafana: no provisioned Prometheus datasource pointing at %s", prometheus)
	require.True(t, dashboardOK, "grafana: grafana/campaign-manager.json is not in a provisioned dashboards path")
}
