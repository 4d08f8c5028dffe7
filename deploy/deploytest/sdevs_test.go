package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// s.yaml is checked three ways:
//
//  1. decoded strictly (yaml.v3, KnownFields) into sFile, a Go model of the
//     Serverless Devs 3 file and of the fc3 component's props, written from
//     the component's JSON schema (devsapp/fc3, src/schema.json) and its YAML
//     reference (docs/zh/yaml/readme.md, triggers.md): a misspelt or unknown
//     property fails;
//  2. rendered by the pinned Serverless Devs CLI (`s preview -o json`, which
//     resolves ${vars.…} and ${env(…)} without network or credentials), and
//     the rendered props checked against the schema's constraints (enums,
//     ranges, required properties);
//  3. the rules below, on the rendered props.

type sFile struct {
	Edition   string               `yaml:"edition"`
	Name      string               `yaml:"name"`
	Access    string               `yaml:"access"`
	Vars      map[string]string    `yaml:"vars"`
	Resources map[string]sResource `yaml:"resources"`
}

type sResource struct {
	Component string   `yaml:"component"`
	Props     fc3Props `yaml:"props"`
}

// fc3Props has every property of the fc3 schema. Those that s.yaml does not
// use and whose shape is large (containers, VPC, NAS, OSS mounts, GPU,
// tracing, DNS, lifecycle hooks, async destinations) are kept as opaque
// values; a rule requires them to be absent.
type fc3Props struct {
	Region               string            `yaml:"region"`
	FunctionName         string            `yaml:"functionName"`
	Description          string            `yaml:"description"`
	Runtime              string            `yaml:"runtime"`
	Handler              string            `yaml:"handler"`
	Code                 string            `yaml:"code"` // the schema also allows {ossBucketName, ossObjectName, src}
	CPU                  float64           `yaml:"cpu"`
	MemorySize           int               `yaml:"memorySize"`
	DiskSize             int               `yaml:"diskSize"`
	Timeout              int               `yaml:"timeout"`
	InstanceConcurrency  int               `yaml:"instanceConcurrency"`
	Role                 string            `yaml:"role"`
	InternetAccess       *bool             `yaml:"internetAccess"`
	Layers               []string          `yaml:"layers"`
	Endpoint             string            `yaml:"endpoint"`
	LogConfig            *fc3LogConfig     `yaml:"logConfig"` // the schema also allows "auto"
	EnvironmentVariables map[string]string `yaml:"environmentVariables"`
	Triggers             []fc3Trigger      `yaml:"triggers"`

	AsyncInvokeConfig       interface{} `yaml:"asyncInvokeConfig"`
	CustomContainerConfig   interface{} `yaml:"customContainerConfig"`
	CustomDNS               interface{} `yaml:"customDNS"`
	CustomRuntimeConfig     interface{} `yaml:"customRuntimeConfig"`
	GpuConfig               interface{} `yaml:"gpuConfig"`
	InstanceLifecycleConfig interface{} `yaml:"instanceLifecycleConfig"`
	NasConfig               interface{} `yaml:"nasConfig"`
	OssMountConfig          interface{} `yaml:"ossMountConfig"`
	TracingConfig           interface{} `yaml:"tracingConfig"`
	VpcBinding              interface{} `yaml:"vpcBinding"`
	VpcConfig               interface{} `yaml:"vpcConfig"`
}

type fc3LogConfig struct {
	Project               string `yaml:"project"`
	Logstore              string `yaml:"logstore"`
	EnableRequestMetrics  *bool  `yaml:"enableRequestMetrics"`
	EnableInstanceMetrics *bool  `yaml:"enableInstanceMetrics"`
	LogBeginRule          string `yaml:"logBeginRule"`
}

type fc3Trigger struct {
	TriggerName    string `yaml:"triggerName"`
	TriggerType    string `yaml:"triggerType"`
	Description    string `yaml:"description"`
	Qualifier      string `yaml:"qualifier"`
	SourceArn      string `yaml:"sourceArn"`
	InvocationRole string `yaml:"invocationRole"`
	// TriggerConfig depends on TriggerType; decoded by triggerConfig.
	TriggerConfig yaml.Node `yaml:"triggerConfig"`

	HTTP  *fc3HTTPTriggerConfig  `yaml:"-"`
	Timer *fc3TimerTriggerConfig `yaml:"-"`
}

// IHttpTriggerConfig of the schema.
type fc3HTTPTriggerConfig struct {
	AuthType           string   `yaml:"authType"`
	AuthConfig         string   `yaml:"authConfig"`
	DisableURLInternet *bool    `yaml:"disableURLInternet"`
	Methods            []string `yaml:"methods"`
}

// ITimerTriggerConfig of the schema.
type fc3TimerTriggerConfig struct {
	CronExpression string `yaml:"cronExpression"`
	Enable         *bool  `yaml:"enable"`
	Payload        string `yaml:"payload"`
}

// decodeStrict decodes YAML (or JSON, which is YAML) refusing unknown keys.
func decodeStrict(data []byte, out interface{}) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(out)
}

// decodeSFile decodes s.yaml (raw or rendered) and each trigger's config by
// its type. This schema covers the trigger types s.yaml uses, http and
// timer; any other type is refused.
func decodeSFile(data []byte) (*sFile, error) {
	var f sFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	for name, r := range f.Resources {
		for i := range r.Props.Triggers {
			tr := &r.Props.Triggers[i]
			if tr.TriggerConfig.Kind == 0 {
				return nil, fmt.Errorf("resources.%s.props.triggers[%d]: no triggerConfig", name, i)
			}
			var err error
			switch tr.TriggerType {
			case "http":
				tr.HTTP = &fc3HTTPTriggerConfig{}
				err = decodeNode(&tr.TriggerConfig, tr.HTTP)
			case "timer":
				tr.Timer = &fc3TimerTriggerConfig{}
				err = decodeNode(&tr.TriggerConfig, tr.Timer)
			default:
				err = fmt.Errorf("trigger type %q is not one this file may use (http, timer)", tr.TriggerType)
			}
			if err != nil {
				return nil, fmt.Errorf("resources.%s.props.triggers[%d] (%s): %w", name, i, tr.TriggerName, err)
			}
		}
		f.Resources[name] = r
	}
	return &f, nil
}

func decodeNode(n *yaml.Node, out interface{}) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	return decodeStrict(b, out)
}

// ---- the pinned CLI ----

// pinnedSVersion is the version of @serverless-devs/s that package.json pins.
func pinnedSVersion(t testing.TB) string {
	t.Helper()
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(repoRoot(t), "package.json")), &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	v := pkg.DevDependencies["@serverless-devs/s"]
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("package.json must pin @serverless-devs/s to an exact version, not %q", v)
	}
	return v
}

// sBinary finds the Serverless Devs CLI: $CSRFN_S_BIN, else
// node_modules/.bin/s under the repository (npm ci), else s on PATH. It must
// be the version package.json pins.
func sBinary(t testing.TB) string {
	t.Helper()
	sBinOnce.Do(func() { sBin, sBinErr = findSBinary(t) })
	if sBinErr != nil {
		t.Fatal(sBinErr)
	}
	return sBin
}

var (
	sBinOnce sync.Once
	sBin     string
	sBinErr  error
)

func findSBinary(t testing.TB) (string, error) {
	t.Helper()
	want := pinnedSVersion(t)
	howto := fmt.Sprintf("run `npm ci` at the repository root (it installs @serverless-devs/s %s from package.json "+
		"into node_modules/.bin; Node.js and npm are needed), or set CSRFN_S_BIN to an s %s binary", want, want)
	var bin string
	if p := os.Getenv("CSRFN_S_BIN"); p != "" {
		bin = p
	} else if p := filepath.Join(repoRoot(t), "node_modules", ".bin", "s"); fileExists(p) {
		bin = p
	} else if p, err := exec.LookPath("s"); err == nil {
		bin = p
	} else {
		return "", fmt.Errorf("the Serverless Devs CLI (s) is not installed: %s", howto)
	}
	out, err := runS(t, bin, "-v")
	if err != nil {
		return "", fmt.Errorf("%s -v: %v\n%s\n%s", bin, err, out, howto)
	}
	m := regexp.MustCompile(`@serverless-devs/s: (\S+?),`).FindSubmatch(out)
	if m == nil || string(m[1]) != want {
		return "", fmt.Errorf("%s is not @serverless-devs/s %s (it says %q): %s", bin, want, strings.TrimSpace(string(out)), howto)
	}
	return bin, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// runS runs the CLI offline-safe: a fresh HOME (s keeps its config and logs
// there), none of the CSRFN_FC_* variables of the caller's environment
// unless given in extraEnv.
func runS(t testing.TB, bin string, args ...string) ([]byte, error) {
	return runSEnv(t, bin, nil, args...)
}

func runSEnv(t testing.TB, bin string, extraEnv []string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot(t)
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "CSRFN_FC_") || strings.HasPrefix(e, "HOME=") {
			continue
		}
		env = append(env, e)
	}
	env = append(env, "HOME="+t.TempDir(), "NO_COLOR=1")
	cmd.Env = append(env, extraEnv...)
	return cmd.CombinedOutput()
}

// sPreview renders an s.yaml with `s preview -o json`.
func sPreview(t testing.TB, bin, file string, extraEnv ...string) ([]byte, error) {
	t.Helper()
	out, err := runSEnv(t, bin, extraEnv, "preview", "-t", file, "-o", "json")
	if err != nil {
		return out, fmt.Errorf("s preview -t %s: %v", file, err)
	}
	// s prints a warning line (running as root) before the document.
	i := bytes.Index(out, []byte("\n{"))
	switch {
	case bytes.HasPrefix(out, []byte("{")):
		i = 0
	case i >= 0:
		i++
	default:
		return out, fmt.Errorf("s preview printed no JSON document")
	}
	return out[i:], nil
}

// ---- schema constraints (on the rendered props) ----

// From the fc3 schema: IRegion, IRuntime, ITriggerType and the enums and
// ranges of its properties.
var (
	fc3Regions = set2("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
		"ap-southeast-3", "ap-southeast-5", "ap-southeast-7", "cn-beijing", "cn-chengdu", "cn-hangzhou",
		"cn-hongkong", "cn-huhehaote", "cn-qingdao", "cn-shanghai", "cn-shenzhen", "cn-zhangjiakou",
		"eu-central-1", "eu-west-1", "us-east-1", "us-west-1")
	fc3Runtimes = set2("custom", "custom-container", "custom.debian10", "dotnetcore2.1", "dotnetcore3.1", "go1",
		"java11", "java8", "nodejs10", "nodejs12", "nodejs14", "nodejs16", "nodejs18", "nodejs20", "php7.2",
		"python2.7", "python3", "python3.10", "python3.9")
	fc3TriggerTypes = set2("cdn_events", "eventbridge", "http", "log", "mns_topic", "oss", "tablestore", "timer")
	fc3HTTPMethods  = set2("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
)

func set2(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, e := range s {
		m[e] = true
	}
	return m
}

// fc3SchemaErrors lists what the rendered props break of the fc3 schema.
func fc3SchemaErrors(f *sFile) []string {
	var out []string
	bad := func(format string, a ...interface{}) { out = append(out, fmt.Sprintf(format, a...)) }
	if f.Edition != "3.0.0" {
		bad("edition %q, want 3.0.0 (Serverless Devs 3)", f.Edition)
	}
	if f.Name == "" {
		bad("no name")
	}
	if len(f.Resources) == 0 {
		bad("no resources")
	}
	for name, r := range f.Resources {
		p := r.Props
		at := "resources." + name + ".props"
		if r.Component != "fc3" {
			bad("resources.%s.component %q, want fc3", name, r.Component)
		}
		// required: functionName, region, runtime; and code and handler
		// unless the runtime is custom-container (code) or custom* (handler).
		for k, v := range map[string]string{"functionName": p.FunctionName, "region": p.Region, "runtime": p.Runtime, "code": p.Code} {
			if v == "" {
				bad("%s.%s is required", at, k)
			}
		}
		if !strings.HasPrefix(p.Runtime, "custom") && p.Handler == "" {
			bad("%s.handler is required for runtime %s", at, p.Runtime)
		}
		if !fc3Regions[p.Region] {
			bad("%s.region %q is not an fc3 region", at, p.Region)
		}
		if !fc3Runtimes[p.Runtime] {
			bad("%s.runtime %q is not an fc3 runtime", at, p.Runtime)
		}
		if p.MemorySize != 0 && (p.MemorySize < 128 || p.MemorySize > 32768 || p.MemorySize%64 != 0) {
			bad("%s.memorySize %d: want a multiple of 64 in 128..32768", at, p.MemorySize)
		}
		if p.CPU != 0 && (p.CPU < 0.05 || p.CPU > 16) {
			bad("%s.cpu %v: want 0.05..16", at, p.CPU)
		}
		if p.DiskSize != 0 && p.DiskSize != 512 && p.DiskSize != 10240 {
			bad("%s.diskSize %d: want 512 or 10240", at, p.DiskSize)
		}
		if p.Timeout != 0 && (p.Timeout < 1 || p.Timeout > 86400) {
			bad("%s.timeout %d: want 1..86400", at, p.Timeout)
		}
		if p.InstanceConcurrency != 0 && (p.InstanceConcurrency < 1 || p.InstanceConcurrency > 100) {
			bad("%s.instanceConcurrency %d: want 1..100", at, p.InstanceConcurrency)
		}
		if lc := p.LogConfig; lc != nil {
			if lc.Project == "" || lc.Logstore == "" {
				bad("%s.logConfig needs project and logstore", at)
			}
			if lc.LogBeginRule != "" && lc.LogBeginRule != "DefaultRegex" && lc.LogBeginRule != "None" {
				bad("%s.logConfig.logBeginRule %q: want DefaultRegex or None", at, lc.LogBeginRule)
			}
		}
		for i, tr := range p.Triggers {
			tat := fmt.Sprintf("%s.triggers[%d]", at, i)
			if tr.TriggerName == "" {
				bad("%s.triggerName is required", tat)
			}
			if !fc3TriggerTypes[tr.TriggerType] {
				bad("%s.triggerType %q is not an fc3 trigger type", tat, tr.TriggerType)
			}
			if c := tr.HTTP; c != nil {
				if c.AuthType != "anonymous" && c.AuthType != "function" {
					bad("%s.triggerConfig.authType %q: want anonymous or function", tat, c.AuthType)
				}
				if len(c.Methods) == 0 {
					bad("%s.triggerConfig.methods is required", tat)
				}
				for _, m := range c.Methods {
					if !fc3HTTPMethods[m] {
						bad("%s.triggerConfig.methods: %q is not an HTTP trigger method", tat, m)
					}
				}
			}
			if c := tr.Timer; c != nil {
				if c.CronExpression == "" || c.Enable == nil {
					bad("%s.triggerConfig needs cronExpression and enable", tat)
				}
			}
		}
	}
	return out
}

// ---- rules ----

type sRule struct {
	ID    string
	What  string
	Check func(f *sFile, raw *sFile) []string
}

var sRules = []sRule{
	{"fc-http-auth", "every HTTP trigger requires signed requests (authType function)", checkFCHTTPAuth},
	{"fc-timer-disabled", "timer triggers are disabled by default and carry a valid batch", checkFCTimerDisabled},
	{"fc-role", "the function has a RAM role whose ARN is built from vars", checkFCRole},
	{"fc-env", "the function is configured for the OSS store and KMS sealing from vars, with no static secret", checkFCEnv},
	{"fc-function", "go1 runtime, handler main, the Makefile's zip, one vCPU, one request per instance, nothing unused", checkFCFunction},
	{"fc-logging", "the function logs to an SLS logstore named by vars", checkFCLogging},
}

func lintSFile(f, raw *sFile) []finding {
	var out []finding
	for _, r := range sRules {
		for _, msg := range r.Check(f, raw) {
			out = append(out, finding{Rule: r.ID, Msg: msg})
		}
	}
	return out
}

func eachFunction(f *sFile, fn func(name string, p *fc3Props)) {
	for _, name := range sortedResourceNames(f) {
		r := f.Resources[name]
		fn(name, &r.Props)
	}
}

func sortedResourceNames(f *sFile) []string {
	m := make(map[string]interface{}, len(f.Resources))
	for k := range f.Resources {
		m[k] = nil
	}
	return sortedKeys(m)
}

func checkFCHTTPAuth(f, _ *sFile) []string {
	var out []string
	eachFunction(f, func(name string, p *fc3Props) {
		for _, tr := range p.Triggers {
			if tr.TriggerType == "http" && (tr.HTTP == nil || tr.HTTP.AuthType != "function") {
				a := ""
				if tr.HTTP != nil {
					a = tr.HTTP.AuthType
				}
				out = append(out, fmt.Sprintf("%s: HTTP trigger %q has authType %q (want function)", name, tr.TriggerName, a))
			}
		}
	})
	return out
}

func checkFCTimerDisabled(f, _ *sFile) []string {
	var out []string
	eachFunction(f, func(name string, p *fc3Props) {
		for _, tr := range p.Triggers {
			if tr.TriggerType != "timer" {
				continue
			}
			if tr.Timer == nil || tr.Timer.Enable == nil || *tr.Timer.Enable {
				out = append(out, fmt.Sprintf("%s: timer trigger %q is enabled by default", name, tr.TriggerName))
			}
			if tr.Timer != nil {
				if err := checkBatchJSON(tr.Timer.Payload); err != nil {
					out = append(out, fmt.Sprintf("%s: timer trigger %q payload: %v", name, tr.TriggerName, err))
				}
			}
		}
	})
	return out
}

var ramRoleARN = regexp.MustCompile(`^acs:ram::[^:/]+:role/[^/:]+$`)

func checkFCRole(f, raw *sFile) []string {
	var out []string
	eachFunction(f, func(name string, p *fc3Props) {
		if !ramRoleARN.MatchString(p.Role) {
			out = append(out, fmt.Sprintf("%s: role %q is not a RAM role ARN acs:ram::ACCOUNT:role/NAME", name, p.Role))
		}
		if r, ok := raw.Resources[name]; ok && !strings.Contains(r.Props.Role, "${vars.") {
			out = append(out, fmt.Sprintf("%s: role %q is written out instead of built from vars", name, r.Props.Role))
		}
	})
	return out
}

// Variables that would put a secret into the function's configuration: the
// sealing key must come from KMS and the credentials from the role.
var staticSecrets = []string{"CSRFN_MASTER_KEY", "CSRFN_MASTER_KEY_FILE", "CSRFN_TOKEN",
	"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"}

func checkFCEnv(f, _ *sFile) []string {
	var out []string
	eachFunction(f, func(name string, p *fc3Props) {
		env := p.EnvironmentVariables
		want := "oss://" + f.Vars["bucket"] + "/" + f.Vars["prefix"]
		if f.Vars["bucket"] == "" || f.Vars["prefix"] == "" || env["CSRFN_STORE"] != want {
			out = append(out, fmt.Sprintf("%s: CSRFN_STORE %q, want oss://${vars.bucket}/${vars.prefix} with both set (%q)", name, env["CSRFN_STORE"], want))
		}
		if strings.Trim(f.Vars["prefix"], "/") != f.Vars["prefix"] || strings.ContainsAny(f.Vars["prefix"], "*?") {
			out = append(out, fmt.Sprintf("%s: vars.prefix %q must be a plain path without slashes at its ends", name, f.Vars["prefix"]))
		}
		if env["CSRFN_KMS_KEY_ID"] == "" || env["CSRFN_KMS_KEY_ID"] != f.Vars["kmsKeyId"] {
			out = append(out, fmt.Sprintf("%s: CSRFN_KMS_KEY_ID %q, want ${vars.kmsKeyId}", name, env["CSRFN_KMS_KEY_ID"]))
		}
		if env["CSRFN_OSS_KMS_KEY_ID"] != env["CSRFN_KMS_KEY_ID"] {
			out = append(out, fmt.Sprintf("%s: CSRFN_OSS_KMS_KEY_ID %q is not CSRFN_KMS_KEY_ID (the RAM policy grants that key only)", name, env["CSRFN_OSS_KMS_KEY_ID"]))
		}
		if env["CSRFN_LOG_LEVEL"] == "" {
			out = append(out, fmt.Sprintf("%s: CSRFN_LOG_LEVEL is not set", name))
		}
		for _, s := range staticSecrets {
			if _, ok := env[s]; ok {
				out = append(out, fmt.Sprintf("%s: %s puts a secret into the function configuration", name, s))
			}
		}
	})
	return out
}

func checkFCFunction(f, _ *sFile) []string {
	var out []string
	eachFunction(f, func(name string, p *fc3Props) {
		if p.Runtime != "go1" || p.Handler != "main" {
			out = append(out, fmt.Sprintf("%s: runtime %q handler %q, want go1 and main", name, p.Runtime, p.Handler))
		}
		if p.Code != "./build/alibaba-fc/main.zip" {
			out = append(out, fmt.Sprintf("%s: code %q, want ./build/alibaba-fc/main.zip (make build)", name, p.Code))
		}
		if p.CPU < 1 {
			out = append(out, fmt.Sprintf("%s: cpu %v: key generation wants one full vCPU", name, p.CPU))
		}
		// Function Compute: 1 to 4 GB of memory per vCPU.
		if gb := float64(p.MemorySize) / 1024; p.CPU > 0 && (gb < p.CPU || gb > 4*p.CPU) {
			out = append(out, fmt.Sprintf("%s: memorySize %d MB for %v vCPU: want 1 to 4 GB per vCPU", name, p.MemorySize, p.CPU))
		}
		if math.Abs(p.CPU*20-math.Round(p.CPU*20)) > 1e-9 {
			out = append(out, fmt.Sprintf("%s: cpu %v is not a multiple of 0.05", name, p.CPU))
		}
		if p.Timeout < 120 {
			out = append(out, fmt.Sprintf("%s: timeout %d s is short for a batch of RSA_4096 keys", name, p.Timeout))
		}
		if p.InstanceConcurrency != 1 {
			out = append(out, fmt.Sprintf("%s: instanceConcurrency %d: the go1 runtime serves one request per instance", name, p.InstanceConcurrency))
		}
		for k, v := range map[string]interface{}{
			"asyncInvokeConfig": p.AsyncInvokeConfig, "customContainerConfig": p.CustomContainerConfig,
			"customDNS": p.CustomDNS, "customRuntimeConfig": p.CustomRuntimeConfig, "gpuConfig": p.GpuConfig,
			"instanceLifecycleConfig": p.InstanceLifecycleConfig, "nasConfig": p.NasConfig,
			"ossMountConfig": p.OssMountConfig, "tracingConfig": p.TracingConfig, "vpcBinding": p.VpcBinding,
			"vpcConfig": p.VpcConfig,
		} {
			if v != nil {
				out = append(out, fmt.Sprintf("%s: %s is set; this file's checks do not cover it", name, k))
			}
		}
	})
	return out
}

func checkFCLogging(f, _ *sFile) []string {
	var out []string
	eachFunction(f, func(name string, p *fc3Props) {
		lc := p.LogConfig
		if lc == nil || lc.Project == "" || lc.Logstore == "" {
			out = append(out, fmt.Sprintf("%s: no logConfig with project and logstore", name))
			return
		}
		if lc.Project != f.Vars["logProject"] || lc.Logstore != f.Vars["logstore"] {
			out = append(out, fmt.Sprintf("%s: logConfig %s/%s is not ${vars.logProject}/${vars.logstore} (the RAM policy grants that logstore only)", name, lc.Project, lc.Logstore))
		}
	})
	return out
}
