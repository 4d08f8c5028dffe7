package deploytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func sYAMLPath(t testing.TB) string { return filepath.Join(repoRoot(t), "s.yaml") }

func rawSFile(t testing.TB) *sFile {
	t.Helper()
	f, err := decodeSFile(readFile(t, sYAMLPath(t)))
	if err != nil {
		t.Fatalf("s.yaml does not match the fc3 props model: %v", err)
	}
	return f
}

var (
	renderOnce sync.Once
	rendered   []byte
	renderErr  error
	renderOut  []byte
)

// renderedS is `s preview -o json` of s.yaml with no CSRFN_FC_* set (run
// once per test binary).
func renderedS(t testing.TB) []byte {
	t.Helper()
	bin := sBinary(t)
	renderOnce.Do(func() {
		renderOut, renderErr = sPreview(t, bin, sYAMLPath(t))
		rendered = renderOut
	})
	if renderErr != nil {
		t.Fatalf("%v\n%s", renderErr, renderOut)
	}
	return rendered
}

func renderedSFile(t testing.TB) *sFile {
	t.Helper()
	f, err := decodeSFile(renderedS(t))
	if err != nil {
		t.Fatalf("the rendered s.yaml does not match the fc3 props model: %v", err)
	}
	return f
}

func TestSYAMLDecodesStrictly(t *testing.T) {
	f := rawSFile(t)
	if len(f.Resources) != 1 {
		t.Fatalf("want one resource, have %d", len(f.Resources))
	}
	for _, k := range []string{"region", "bucket", "kmsKeyId", "roleName", "accountId", "prefix"} {
		if f.Vars[k] == "" {
			t.Errorf("vars.%s is missing", k)
		}
	}
}

func TestSPreviewSucceedsAndPassesEveryRule(t *testing.T) {
	f := renderedSFile(t)
	for _, e := range fc3SchemaErrors(f) {
		t.Errorf("fc3 schema: %s", e)
	}
	for _, fd := range lintSFile(f, rawSFile(t)) {
		t.Errorf("s.yaml: %s", fd)
	}
}

// The values come from the environment (${env(…)} in vars) and reach the
// props: CSRFN_STORE, the role ARN, the KMS key, the logstore.
func TestSPreviewTakesDeploymentValuesFromTheEnvironment(t *testing.T) {
	bin := sBinary(t)
	out, err := sPreview(t, bin, sYAMLPath(t),
		"CSRFN_FC_REGION=cn-shanghai", "CSRFN_FC_ACCOUNT_ID=1234567890123456", "CSRFN_FC_ROLE_NAME=csrfn-role",
		"CSRFN_FC_BUCKET=acme-csrfn-keys", "CSRFN_FC_PREFIX=prod/csrfn", "CSRFN_FC_KMS_KEY_ID=key-shh0123456789abcdef",
		"CSRFN_FC_LOG_PROJECT=acme-logs", "CSRFN_FC_LOGSTORE=csrfn-prod", "CSRFN_FC_FUNCTION_NAME=csrfn-prod")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f, err := decodeSFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Resources["csrfn"].Props
	for _, c := range [][2]string{
		{p.Region, "cn-shanghai"},
		{p.FunctionName, "csrfn-prod"},
		{p.Role, "acs:ram::1234567890123456:role/csrfn-role"},
		{p.EnvironmentVariables["CSRFN_STORE"], "oss://acme-csrfn-keys/prod/csrfn"},
		{p.EnvironmentVariables["CSRFN_KMS_KEY_ID"], "key-shh0123456789abcdef"},
		{p.LogConfig.Project + "/" + p.LogConfig.Logstore, "acme-logs/csrfn-prod"},
	} {
		if c[0] != c[1] {
			t.Errorf("got %q, want %q", c[0], c[1])
		}
	}
	for _, e := range fc3SchemaErrors(f) {
		t.Errorf("fc3 schema: %s", e)
	}
	for _, fd := range lintSFile(f, rawSFile(t)) {
		t.Errorf("%s", fd)
	}
	// The RAM policy, filled with the same values, grants exactly that.
	policy, err := fillRAMPolicy(readFile(t, ramPolicyPath(t)), f.Vars)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := decodeRAMPolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range lintRAMPolicy(rp, f.Vars) {
		t.Errorf("RAM policy: %s", fd)
	}
	if !bytes.Contains(policy, []byte(`"acs:oss:*:*:acme-csrfn-keys/prod/csrfn/*"`)) {
		t.Errorf("the filled-in policy does not name the store's objects:\n%s", policy)
	}
}

// The strict model refuses what fc3 would ignore or misread.
func TestSStrictDecodingCatchesMistakes(t *testing.T) {
	raw := string(readFile(t, sYAMLPath(t)))
	cases := []struct{ name, old, new string }{
		{"misspelt prop", "      memorySize: 1024", "      memorysize: 1024"},
		{"misspelt http trigger config", "            authType: function", "            authtype: function"},
		{"misspelt timer trigger config", "            enable: false", "            enabled: false"},
		{"trigger type outside the model", "          triggerType: timer", "          triggerType: oss"},
		{"misspelt top-level key", "resources:", "resource:"},
		{"number as text", "      timeout: 180", "      timeout: three minutes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(raw, c.old) {
				t.Fatalf("s.yaml has no %q", c.old)
			}
			if _, err := decodeSFile([]byte(strings.Replace(raw, c.old, c.new, 1))); err == nil {
				t.Errorf("decoded without error")
			}
		})
	}
}

// mutateRendered decodes the rendered file afresh and changes it.
func mutateRendered(t *testing.T, m func(f *sFile, p *fc3Props)) (*sFile, *sFile) {
	t.Helper()
	f, err := decodeSFile(renderedS(t))
	if err != nil {
		t.Fatal(err)
	}
	raw := rawSFile(t)
	r := f.Resources["csrfn"]
	m(f, &r.Props)
	cur := f.Resources["csrfn"] // m may have replaced the resource itself
	cur.Props = r.Props
	f.Resources["csrfn"] = cur
	return f, raw
}

func httpTrigger(p *fc3Props) *fc3HTTPTriggerConfig {
	for _, tr := range p.Triggers {
		if tr.HTTP != nil {
			return tr.HTTP
		}
	}
	return nil
}

func timerTrigger(p *fc3Props) *fc3TimerTriggerConfig {
	for _, tr := range p.Triggers {
		if tr.Timer != nil {
			return tr.Timer
		}
	}
	return nil
}

func TestFC3SchemaChecksFire(t *testing.T) {
	cases := []struct {
		name string
		m    func(f *sFile, p *fc3Props)
	}{
		{"edition 2", func(f *sFile, _ *fc3Props) { f.Edition = "1.0.0" }},
		{"unknown region", func(_ *sFile, p *fc3Props) { p.Region = "cn-mars" }},
		{"unknown runtime", func(_ *sFile, p *fc3Props) { p.Runtime = "go2" }},
		{"no handler", func(_ *sFile, p *fc3Props) { p.Handler = "" }},
		{"no code", func(_ *sFile, p *fc3Props) { p.Code = "" }},
		{"memory not a multiple of 64", func(_ *sFile, p *fc3Props) { p.MemorySize = 1000 }},
		{"cpu too large", func(_ *sFile, p *fc3Props) { p.CPU = 32 }},
		{"disk size", func(_ *sFile, p *fc3Props) { p.DiskSize = 1024 }},
		{"timeout too long", func(_ *sFile, p *fc3Props) { p.Timeout = 90000 }},
		{"concurrency too high", func(_ *sFile, p *fc3Props) { p.InstanceConcurrency = 200 }},
		{"log rule", func(_ *sFile, p *fc3Props) { p.LogConfig.LogBeginRule = "Sometimes" }},
		{"no logstore", func(_ *sFile, p *fc3Props) { p.LogConfig.Logstore = "" }},
		{"auth type", func(_ *sFile, p *fc3Props) { httpTrigger(p).AuthType = "none" }},
		{"method", func(_ *sFile, p *fc3Props) { httpTrigger(p).Methods = []string{"FETCH"} }},
		{"no methods", func(_ *sFile, p *fc3Props) { httpTrigger(p).Methods = nil }},
		{"no cron", func(_ *sFile, p *fc3Props) { timerTrigger(p).CronExpression = "" }},
		{"trigger without name", func(_ *sFile, p *fc3Props) { p.Triggers[0].TriggerName = "" }},
		{"component", func(f *sFile, _ *fc3Props) { r := f.Resources["csrfn"]; r.Component = "fc"; f.Resources["csrfn"] = r }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _ := mutateRendered(t, c.m)
			if errs := fc3SchemaErrors(f); len(errs) == 0 {
				t.Errorf("no schema error")
			}
		})
	}
}

var sRuleProofs = []struct {
	rule, name string
	m          func(f *sFile, p *fc3Props, raw *sFile)
}{
	{"fc-http-auth", "anonymous", func(_ *sFile, p *fc3Props, _ *sFile) { httpTrigger(p).AuthType = "anonymous" }},
	{"fc-http-auth", "auth type left out", func(_ *sFile, p *fc3Props, _ *sFile) { httpTrigger(p).AuthType = "" }},
	{"fc-timer-disabled", "enabled", func(_ *sFile, p *fc3Props, _ *sFile) { v := true; timerTrigger(p).Enable = &v }},
	{"fc-timer-disabled", "enable left out", func(_ *sFile, p *fc3Props, _ *sFile) { timerTrigger(p).Enable = nil }},
	{"fc-timer-disabled", "payload is one request", func(_ *sFile, p *fc3Props, _ *sFile) {
		timerTrigger(p).Payload = `{"CommonName":"example.com"}`
	}},
	{"fc-timer-disabled", "payload not JSON", func(_ *sFile, p *fc3Props, _ *sFile) { timerTrigger(p).Payload = "renew" }},
	{"fc-role", "no role", func(_ *sFile, p *fc3Props, _ *sFile) { p.Role = "" }},
	{"fc-role", "not a RAM role ARN", func(_ *sFile, p *fc3Props, _ *sFile) { p.Role = "AliyunFCDefaultRole" }},
	{"fc-role", "written out", func(_ *sFile, _ *fc3Props, raw *sFile) {
		r := raw.Resources["csrfn"]
		r.Props.Role = "acs:ram::1234567890123456:role/csrfn-fc"
		raw.Resources["csrfn"] = r
	}},
	{"fc-env", "file store", func(_ *sFile, p *fc3Props, _ *sFile) { p.EnvironmentVariables["CSRFN_STORE"] = "file:///tmp/store" }},
	{"fc-env", "another bucket", func(_ *sFile, p *fc3Props, _ *sFile) { p.EnvironmentVariables["CSRFN_STORE"] = "oss://other/csrfn" }},
	{"fc-env", "empty prefix", func(f *sFile, p *fc3Props, _ *sFile) {
		f.Vars["prefix"] = ""
		p.EnvironmentVariables["CSRFN_STORE"] = "oss://" + f.Vars["bucket"] + "/"
	}},
	{"fc-env", "prefix with a trailing slash", func(f *sFile, p *fc3Props, _ *sFile) {
		f.Vars["prefix"] = "csrfn/"
		p.EnvironmentVariables["CSRFN_STORE"] = "oss://" + f.Vars["bucket"] + "/csrfn/"
	}},
	{"fc-env", "no KMS key", func(_ *sFile, p *fc3Props, _ *sFile) { delete(p.EnvironmentVariables, "CSRFN_KMS_KEY_ID") }},
	{"fc-env", "OSS encrypted with another key", func(_ *sFile, p *fc3Props, _ *sFile) {
		p.EnvironmentVariables["CSRFN_OSS_KMS_KEY_ID"] = "key-other"
	}},
	{"fc-env", "no log level", func(_ *sFile, p *fc3Props, _ *sFile) { delete(p.EnvironmentVariables, "CSRFN_LOG_LEVEL") }},
	{"fc-env", "master key in the configuration", func(_ *sFile, p *fc3Props, _ *sFile) {
		p.EnvironmentVariables["CSRFN_MASTER_KEY"] = "c2VjcmV0"
	}},
	{"fc-env", "AccessKey in the configuration", func(_ *sFile, p *fc3Props, _ *sFile) {
		p.EnvironmentVariables["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "x"
	}},
	{"fc-function", "custom runtime", func(_ *sFile, p *fc3Props, _ *sFile) { p.Runtime = "custom.debian10" }},
	{"fc-function", "another code path", func(_ *sFile, p *fc3Props, _ *sFile) { p.Code = "./code" }},
	{"fc-function", "a fraction of a vCPU", func(_ *sFile, p *fc3Props, _ *sFile) { p.CPU, p.MemorySize = 0.35, 512 }},
	{"fc-function", "memory out of ratio", func(_ *sFile, p *fc3Props, _ *sFile) { p.MemorySize = 8192 }},
	{"fc-function", "short timeout", func(_ *sFile, p *fc3Props, _ *sFile) { p.Timeout = 3 }},
	{"fc-function", "instance concurrency", func(_ *sFile, p *fc3Props, _ *sFile) { p.InstanceConcurrency = 10 }},
	{"fc-function", "VPC not covered", func(_ *sFile, p *fc3Props, _ *sFile) { p.VpcConfig = "auto" }},
	{"fc-logging", "no logs", func(_ *sFile, p *fc3Props, _ *sFile) { p.LogConfig = nil }},
	{"fc-logging", "another logstore", func(_ *sFile, p *fc3Props, _ *sFile) { p.LogConfig.Logstore = "other" }},
}

func TestEachSRuleFires(t *testing.T) {
	for _, c := range sRuleProofs {
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			f, raw := mutateRendered(t, func(*sFile, *fc3Props) {})
			r := f.Resources["csrfn"]
			c.m(f, &r.Props, raw)
			f.Resources["csrfn"] = r
			var got []string
			for _, fd := range lintSFile(f, raw) {
				if fd.Rule == c.rule {
					return
				}
				got = append(got, fd.String())
			}
			t.Errorf("rule %s did not fire; findings: %v", c.rule, got)
		})
	}
}

func TestEverySRuleHasAProof(t *testing.T) {
	proved := map[string]bool{}
	for _, c := range sRuleProofs {
		proved[c.rule] = true
	}
	for _, r := range sRules {
		if !proved[r.ID] {
			t.Errorf("rule %s has no case in sRuleProofs", r.ID)
		}
	}
}

// Whole s.yaml files broken on purpose, rendered by the real CLI: the first
// line names the rules that must fire ("# expect: rule…") or the key the
// strict model must refuse ("# expect-decode-error: key").
func TestBrokenSFilesInTestdata(t *testing.T) {
	bin := sBinary(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "deploytest", "testdata", "s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/s/*.yaml (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data := readFile(t, file)
			line, _ := bufio.NewReader(bytes.NewReader(data)).ReadString('\n')
			line = strings.TrimSpace(line)
			out, err := sPreview(t, bin, file)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if key, ok := strings.CutPrefix(line, "# expect-decode-error:"); ok {
				_, err := decodeSFile(out)
				if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(key)) {
					t.Errorf("want a decoding error about %q, got %v", strings.TrimSpace(key), err)
				}
				return
			}
			want := strings.Fields(strings.TrimPrefix(line, "# expect:"))
			if !strings.HasPrefix(line, "# expect:") || len(want) == 0 {
				t.Fatalf("first line must be `# expect: RULE…` or `# expect-decode-error: KEY`")
			}
			f, err := decodeSFile(out)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := decodeSFile(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range fc3SchemaErrors(f) {
				t.Errorf("fc3 schema (the file must be valid, only unsafe): %s", e)
			}
			fired := map[string]bool{}
			var all []string
			for _, fd := range lintSFile(f, raw) {
				fired[fd.Rule] = true
				all = append(all, fd.String())
			}
			for _, r := range want {
				if !fired[r] {
					t.Errorf("rule %s did not fire; findings: %v", r, all)
				}
			}
		})
	}
}

// ---- the RAM policy ----

func ramPolicyPath(t testing.TB) string {
	return filepath.Join(repoRoot(t), "deploy", "alibaba-ram-policy.json")
}

// sampleVars stand for a real deployment's values.
var sampleVars = map[string]string{
	"bucket": "acme-csrfn-keys", "prefix": "csrfn", "region": "cn-hangzhou", "accountId": "1234567890123456",
	"kmsKeyId": "key-hzz0123456789abcdef", "logProject": "acme-logs", "logstore": "csrfn",
}

func filledRAMPolicy(t testing.TB, vars map[string]string) *ramPolicy {
	t.Helper()
	b, err := fillRAMPolicy(readFile(t, ramPolicyPath(t)), vars)
	if err != nil {
		t.Fatal(err)
	}
	p, err := decodeRAMPolicy(b)
	if err != nil {
		t.Fatalf("deploy/alibaba-ram-policy.json: %v", err)
	}
	return p
}

func TestRAMPolicyIsLeastPrivilege(t *testing.T) {
	for _, fd := range lintRAMPolicy(filledRAMPolicy(t, sampleVars), sampleVars) {
		t.Errorf("deploy/alibaba-ram-policy.json: %s", fd)
	}
	// Every placeholder of the file is one the README documents.
	used := map[string]bool{}
	for _, p := range placeholderRE.FindAll(readFile(t, ramPolicyPath(t)), -1) {
		used[string(p)] = true
	}
	for p := range ramPlaceholders {
		if !used[p] {
			t.Errorf("placeholder %s is documented but unused", p)
		}
	}
}

// The placeholders are exactly s.yaml's vars, filled from the rendered file.
func TestRAMPolicyMatchesSYAML(t *testing.T) {
	f := renderedSFile(t)
	for _, v := range ramPlaceholders {
		if _, ok := f.Vars[v]; !ok {
			t.Errorf("s.yaml has no vars.%s for the RAM policy", v)
		}
	}
	for _, fd := range lintRAMPolicy(filledRAMPolicy(t, f.Vars), f.Vars) {
		t.Errorf("%s", fd)
	}
}

func TestEachRAMRuleFires(t *testing.T) {
	base := readFile(t, ramPolicyPath(t))
	statement := func(i int, m func(s map[string]interface{})) func(doc map[string]interface{}) {
		return func(doc map[string]interface{}) { m(doc["Statement"].([]interface{})[i].(map[string]interface{})) }
	}
	cases := []struct {
		rule, name string
		m          func(doc map[string]interface{})
	}{
		{"ram-version", "old version", func(doc map[string]interface{}) { doc["Version"] = "2012-10-17" }},
		{"ram-no-wildcard", "oss:*", statement(0, func(s map[string]interface{}) { s["Action"] = []interface{}{"oss:*"} })},
		{"ram-no-wildcard", "oss:Get*", statement(0, func(s map[string]interface{}) { s["Action"] = []interface{}{"oss:PutObject", "oss:Get*"} })},
		{"ram-no-wildcard", "Resource *", statement(2, func(s map[string]interface{}) { s["Resource"] = "*" })},
		{"ram-no-wildcard", "NotAction", statement(3, func(s map[string]interface{}) { delete(s, "Action"); s["NotAction"] = "ram:*" })},
		{"ram-allowed-actions", "may delete records", statement(0, func(s map[string]interface{}) {
			s["Action"] = []interface{}{"oss:PutObject", "oss:GetObject", "oss:DeleteObject"}
		})},
		{"ram-allowed-actions", "may encrypt", statement(2, func(s map[string]interface{}) {
			s["Action"] = []interface{}{"kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"}
		})},
		{"ram-allowed-actions", "cannot decrypt", statement(2, func(s map[string]interface{}) { s["Action"] = []interface{}{"kms:GenerateDataKey"} })},
		{"ram-resource-scope", "whole bucket", statement(0, func(s map[string]interface{}) { s["Resource"] = []interface{}{"acs:oss:*:*:<bucket>/*"} })},
		{"ram-resource-scope", "every bucket", statement(1, func(s map[string]interface{}) { s["Resource"] = []interface{}{"acs:oss:*:*:*"} })},
		{"ram-resource-scope", "every key", statement(2, func(s map[string]interface{}) { s["Resource"] = []interface{}{"acs:kms:<region>:<account-id>:key/*"} })},
		{"ram-resource-scope", "every logstore", statement(3, func(s map[string]interface{}) {
			s["Resource"] = []interface{}{"acs:log:<region>:<account-id>:project/<log-project>/*"}
		})},
		{"ram-list-prefix", "no prefix condition", statement(1, func(s map[string]interface{}) { delete(s, "Condition") })},
		{"ram-list-prefix", "any prefix", statement(1, func(s map[string]interface{}) {
			s["Condition"] = map[string]interface{}{"StringLike": map[string]interface{}{"oss:Prefix": []interface{}{"*"}}}
		})},
	}
	proved := map[string]bool{}
	for _, c := range cases {
		proved[c.rule] = true
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			var doc map[string]interface{}
			if err := json.Unmarshal(base, &doc); err != nil {
				t.Fatal(err)
			}
			c.m(doc)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false) // keep <placeholders> as they are
			if err := enc.Encode(doc); err != nil {
				t.Fatal(err)
			}
			b, err := fillRAMPolicy(buf.Bytes(), sampleVars)
			if err != nil {
				t.Fatal(err)
			}
			p, err := decodeRAMPolicy(b)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fd := range lintRAMPolicy(p, sampleVars) {
				if fd.Rule == c.rule {
					return
				}
				got = append(got, fd.String())
			}
			t.Errorf("rule %s did not fire; findings: %v", c.rule, got)
		})
	}
	for _, id := range ramRuleIDs {
		if !proved[id] {
			t.Errorf("RAM rule %s has no case", id)
		}
	}
}
