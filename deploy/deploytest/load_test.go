// Package deploytest checks the deployment templates at the repository root:
// template.yaml (AWS SAM), s.yaml (Serverless Devs 3, component fc3) and
// deploy/alibaba-ram-policy.json. It holds tests only.
//
// Each security rule is proved to fire: the tests break the real template
// (or use a small broken variant in testdata/) and assert that the rule
// reports it, and the real files pass every rule.
package deploytest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/csrfn/csrfn/internal/testkit"
	"github.com/csrfn/csrfn/internal/toolbin"
)

// repoRoot is the module root.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := toolbin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readFile(t testing.TB, path string) []byte { return testkit.ReadFile(t, path) }

// A CloudFormation template goes through goformation's own YAML pipeline
// (intrinsics.ProcessYAML: the short tags !Ref, !Sub, !GetAtt… become their
// long forms, then every intrinsic function is handed to a handler). The
// default handlers are lossy for checking (a Ref to a resource or a GetAtt
// becomes null, Fn::Sub drops what it cannot resolve, Fn::Equals becomes a
// bare boolean), so these handlers keep what the template says:
//
//   - Ref to a parameter with a default: the default, as CloudFormation
//     would pass it (a Number parameter's default becomes a number);
//   - Ref to a resource, a parameter without default or a pseudo
//     parameter: the token "${Name}";
//   - Fn::GetAtt: the token "${Name.Attribute}";
//   - Fn::Sub: its string with ${…} left as written (the list form's
//     variables substituted);
//   - condition functions and Fn::If: kept as they are.
//
// A token is a string, which is what every property taking an ARN, a name or
// an ID expects, so the processed template can be validated against the
// schema and read by the rules.
func keepingHandlers() map[string]intrinsics.IntrinsicHandler {
	keep := func(name string, input, _ interface{}) interface{} {
		return map[string]interface{}{name: input}
	}
	return map[string]intrinsics.IntrinsicHandler{
		"Ref":             refHandler,
		"Fn::GetAtt":      getAttHandler,
		"Fn::Sub":         subHandler,
		"Fn::If":          keep,
		"Fn::Equals":      keep,
		"Fn::And":         keep,
		"Fn::Or":          keep,
		"Fn::Not":         keep,
		"Fn::ImportValue": keep,
		"Fn::Cidr":        keep,
	}
}

func refHandler(_ string, input, template interface{}) interface{} {
	name, ok := input.(string)
	if !ok {
		return map[string]interface{}{"Ref": input}
	}
	if name == "AWS::NoValue" {
		return nil
	}
	if p, ok := getPath(template, "Parameters", name).(map[string]interface{}); ok {
		def, has := p["Default"]
		if !has {
			return "${" + name + "}"
		}
		if p["Type"] == "Number" {
			if s, ok := def.(string); ok {
				if f, err := strconv.ParseFloat(s, 64); err == nil {
					return f
				}
			}
		}
		return def
	}
	return "${" + name + "}"
}

func getAttHandler(_ string, input, _ interface{}) interface{} {
	switch v := input.(type) {
	case string:
		return "${" + v + "}"
	case []interface{}:
		parts := make([]string, 0, len(v))
		for _, p := range v {
			s, ok := p.(string)
			if !ok {
				return map[string]interface{}{"Fn::GetAtt": input}
			}
			parts = append(parts, s)
		}
		return "${" + strings.Join(parts, ".") + "}"
	}
	return map[string]interface{}{"Fn::GetAtt": input}
}

func subHandler(_ string, input, _ interface{}) interface{} {
	switch v := input.(type) {
	case string:
		return v
	case []interface{}:
		if len(v) == 2 {
			src, ok1 := v[0].(string)
			vars, ok2 := v[1].(map[string]interface{})
			if ok1 && ok2 {
				for k, val := range vars {
					if s, ok := val.(string); ok {
						src = strings.ReplaceAll(src, "${"+k+"}", s)
					}
				}
				return src
			}
		}
	}
	return map[string]interface{}{"Fn::Sub": input}
}

// processTemplate turns a YAML (or JSON) template into its processed JSON.
func processTemplate(data []byte) ([]byte, error) {
	return intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: keepingHandlers(),
	})
}

// samTemplate is a processed template: the generic document the schema and
// the rules read, and goformation's typed view of the same document.
type samTemplate struct {
	doc   map[string]interface{}
	typed *cloudformation.Template
}

func parseTemplate(data []byte) (*samTemplate, error) {
	js, err := processTemplate(data)
	if err != nil {
		return nil, err
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	typed, err := typedTemplate(doc)
	if err != nil {
		return nil, err
	}
	return &samTemplate{doc: doc, typed: typed}, nil
}

// goformationGaps are the SAM properties that goformation v7.14.9's typed
// model (and its schema, see samSchemaPatches) predates; its decoder refuses
// unknown fields, so the copy handed to the typed model goes without them.
// The rules read them from the generic document.
var goformationGaps = []struct {
	resourceType string
	path         []interface{} // under the resource
}{
	{"AWS::Serverless::Function", []interface{}{"Properties", "LoggingConfig"}},
	{"AWS::Serverless::HttpApi", []interface{}{"Properties", "Auth", "EnableIamAuthorizer"}},
}

// typedTemplate is goformation's typed model of a processed template.
func typedTemplate(doc map[string]interface{}) (*cloudformation.Template, error) {
	c := deepCopy(doc).(map[string]interface{})
	resources, _ := c["Resources"].(map[string]interface{})
	for _, r := range resources {
		for _, g := range goformationGaps {
			if str(getPath(r, "Type")) == g.resourceType && getPath(r, g.path...) != nil {
				_ = setPath(r, nil, true, g.path...)
			}
		}
	}
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	typed, err := goformation.ParseJSONWithOptions(js, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("goformation: %w", err)
	}
	return typed, nil
}

func loadTemplate(t testing.TB, path string) *samTemplate {
	t.Helper()
	tpl, err := parseTemplate(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tpl
}

// ---- generic document helpers ----

// getPath walks maps (string keys) and lists (int keys); nil if absent.
func getPath(v interface{}, path ...interface{}) interface{} {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]interface{})
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]interface{})
			if !ok || k < 0 || k >= len(l) {
				return nil
			}
			v = l[k]
		default:
			return nil
		}
	}
	return v
}

// setPath sets (or, with del, deletes) the value at path; the parents must
// exist.
func setPath(v interface{}, value interface{}, del bool, path ...interface{}) error {
	parent := getPath(v, path[:len(path)-1]...)
	switch k := path[len(path)-1].(type) {
	case string:
		m, ok := parent.(map[string]interface{})
		if !ok {
			return fmt.Errorf("no object at %v", path[:len(path)-1])
		}
		if del {
			if _, ok := m[k]; !ok {
				return fmt.Errorf("nothing to delete at %v", path)
			}
			delete(m, k)
		} else {
			m[k] = value
		}
	case int:
		l, ok := parent.([]interface{})
		if !ok || k < 0 || k >= len(l) {
			return fmt.Errorf("no list item at %v", path)
		}
		if del {
			return fmt.Errorf("cannot delete list item at %v; set the list", path)
		}
		l[k] = value
	}
	return nil
}

// deepCopy copies a JSON-shaped value.
func deepCopy(v interface{}) interface{} {
	switch x := v.(type) {
	case map[string]interface{}:
		m := make(map[string]interface{}, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

func str(v interface{}) string {
	s, _ := v.(string)
	return s
}

// list makes a string or a list into a list.
func list(v interface{}) []interface{} {
	switch x := v.(type) {
	case nil:
		return nil
	case []interface{}:
		return x
	}
	return []interface{}{v}
}

func strList(v interface{}) []string {
	var out []string
	for _, e := range list(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		} else {
			out = append(out, fmt.Sprint(e))
		}
	}
	return out
}

var tokenRE = regexp.MustCompile(`^\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z0-9.]+))?\}$`)

// token reports whether s is exactly one "${Name}" or "${Name.Attr}" token.
func token(s string) (name, attr string, ok bool) {
	m := tokenRE.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

func isTrue(v interface{}) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}

func isFalse(v interface{}) bool {
	switch x := v.(type) {
	case bool:
		return !x
	case string:
		return strings.EqualFold(x, "false")
	}
	return false
}
