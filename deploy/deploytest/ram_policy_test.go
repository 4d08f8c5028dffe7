package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// deploy/alibaba-ram-policy.json is the policy of the function's RAM role.
// Its placeholders stand for the values s.yaml takes from vars; the README
// tells how to fill them in.
var ramPlaceholders = map[string]string{
	"<bucket>":      "bucket",     // CSRFN_FC_BUCKET
	"<prefix>":      "prefix",     // CSRFN_FC_PREFIX
	"<region>":      "region",     // CSRFN_FC_REGION
	"<account-id>":  "accountId",  // CSRFN_FC_ACCOUNT_ID
	"<kms-key-id>":  "kmsKeyId",   // CSRFN_FC_KMS_KEY_ID
	"<log-project>": "logProject", // CSRFN_FC_LOG_PROJECT
	"<logstore>":    "logstore",   // CSRFN_FC_LOGSTORE
}

var placeholderRE = regexp.MustCompile(`<[a-z-]+>`)

// fillRAMPolicy replaces the placeholders with vars (keys as in s.yaml's
// vars). Every placeholder of the file must be known and filled.
func fillRAMPolicy(policy []byte, vars map[string]string) ([]byte, error) {
	var unknown []string
	out := placeholderRE.ReplaceAllFunc(policy, func(p []byte) []byte {
		v, ok := ramPlaceholders[string(p)]
		if !ok || vars[v] == "" {
			unknown = append(unknown, string(p))
			return p
		}
		return []byte(vars[v])
	})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("placeholders without a value: %v", unknown)
	}
	return out, nil
}

type ramStatement struct {
	Effect      string
	Action      interface{}
	NotAction   interface{}
	Resource    interface{}
	NotResource interface{}
	Condition   map[string]map[string]interface{}
}

type ramPolicy struct {
	Version   string
	Statement []ramStatement
}

func decodeRAMPolicy(data []byte) (*ramPolicy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p ramPolicy
	if err := dec.Decode(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ramAllowed is everything the function may do, with the one resource each
// action may apply to (built from vars).
func ramAllowed(vars map[string]string) map[string]string {
	objects := "acs:oss:*:*:" + vars["bucket"] + "/" + vars["prefix"] + "/*"
	key := "acs:kms:" + vars["region"] + ":" + vars["accountId"] + ":key/" + vars["kmsKeyId"]
	return map[string]string{
		"oss:PutObject":       objects,
		"oss:GetObject":       objects,
		"oss:ListObjects":     "acs:oss:*:*:" + vars["bucket"],
		"kms:GenerateDataKey": key,
		"kms:Decrypt":         key,
		"log:PostLogStoreLogs": "acs:log:" + vars["region"] + ":" + vars["accountId"] +
			":project/" + vars["logProject"] + "/logstore/" + vars["logstore"],
	}
}

var ramRuleIDs = []string{"ram-version", "ram-no-wildcard", "ram-allowed-actions", "ram-resource-scope", "ram-list-prefix"}

// lintRAMPolicy checks a filled-in policy.
func lintRAMPolicy(p *ramPolicy, vars map[string]string) []finding {
	var out []finding
	add := func(rule string, i int, format string, a ...interface{}) {
		out = append(out, finding{Rule: rule, Where: fmt.Sprintf("Statement/%d", i), Msg: fmt.Sprintf(format, a...)})
	}
	if p.Version != "1" {
		out = append(out, finding{Rule: "ram-version", Msg: fmt.Sprintf("Version %q, want \"1\"", p.Version)})
	}
	allowed := ramAllowed(vars)
	granted := map[string]bool{}
	for i, s := range p.Statement {
		if s.NotAction != nil {
			add("ram-no-wildcard", i, "NotAction allows everything but a list")
		}
		if s.NotResource != nil {
			add("ram-no-wildcard", i, "NotResource")
		}
		if s.Effect != "Allow" {
			continue // a Deny only narrows
		}
		res := strList(s.Resource)
		for _, r := range res {
			if r == "*" {
				add("ram-no-wildcard", i, "Resource \"*\"")
			}
		}
		for _, a := range strList(s.Action) {
			if strings.Contains(a, "*") {
				add("ram-no-wildcard", i, "wildcard action %q", a)
				continue
			}
			want, ok := allowed[a]
			if !ok {
				add("ram-allowed-actions", i, "action %s is more than the function needs", a)
				continue
			}
			granted[a] = true
			if len(res) != 1 || res[0] != want {
				add("ram-resource-scope", i, "%s on %v, want only %s", a, res, want)
			}
			if a == "oss:ListObjects" {
				prefixes := strList(s.Condition["StringLike"]["oss:Prefix"])
				if len(prefixes) != 1 || prefixes[0] != vars["prefix"]+"/*" {
					add("ram-list-prefix", i, "oss:ListObjects needs the condition StringLike oss:Prefix [%q], has %v", vars["prefix"]+"/*", prefixes)
				}
			}
		}
	}
	// And everything the store and the sealing need is there.
	var missing []string
	for a := range allowed {
		if !granted[a] {
			missing = append(missing, a)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		out = append(out, finding{Rule: "ram-allowed-actions", Msg: fmt.Sprintf("the function needs %v", missing)})
	}
	return out
}
