package deploytest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/awslabs/goformation/v7/cloudformation"
)

// The SAM JSON schema bundled with goformation v7.14.9 was generated before
// two SAM properties that template.yaml relies on existed. Each patch adds
// exactly one property, typed as SAM documents it; every other property of
// the template is checked against the schema as shipped.
// TestSAMSchemaPatchesAreStillNeeded fails once goformation's schema has
// caught up, so that the patch is then removed.
var samSchemaPatches = []struct {
	definition string   // definition that lacks the property
	path       []string // where the property's schema goes, under the definition
	schema     map[string]interface{}
	why        string
}{
	{
		definition: "AWS::Serverless::Function",
		path:       []string{"properties", "Properties", "properties", "LoggingConfig"},
		schema:     map[string]interface{}{"$ref": "#/definitions/AWS::Lambda::Function.LoggingConfig"},
		why: "SAM's AWS::Serverless::Function has LoggingConfig, passed through to " +
			"AWS::Lambda::Function.LoggingConfig (SAM developer guide, sam-resource-function, LoggingConfig)",
	},
	{
		definition: "AWS::Serverless::HttpApi.HttpApiAuth",
		path:       []string{"properties", "EnableIamAuthorizer"},
		schema:     map[string]interface{}{"type": "boolean"},
		why: "SAM's HttpApiAuth has EnableIamAuthorizer (Boolean); DefaultAuthorizer AWS_IAM needs it " +
			"(SAM developer guide, sam-property-httpapi-httpapiauth)",
	},
}

var (
	samSchemaOnce sync.Once
	samSchemaRaw  []byte
)

// goformationSchemaPath finds sam.schema.json in the goformation module that
// the build uses.
func goformationSchemaPath(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/awslabs/goformation/v7")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("locating github.com/awslabs/goformation/v7: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("github.com/awslabs/goformation/v7 has no directory: run `go mod download`")
	}
	return filepath.Join(dir, "schema", "sam.schema.json")
}

func rawSAMSchema(t testing.TB) []byte {
	t.Helper()
	samSchemaOnce.Do(func() {
		samSchemaRaw = readFile(t, goformationSchemaPath(t))
	})
	if samSchemaRaw == nil {
		t.Fatal("sam.schema.json could not be read")
	}
	return samSchemaRaw
}

// samValidator is the bundled schema with samSchemaPatches applied.
func samValidator(t testing.TB) *schemaValidator {
	t.Helper()
	v, err := newSchemaValidator(rawSAMSchema(t))
	if err != nil {
		t.Fatalf("sam.schema.json: %v", err)
	}
	for _, p := range samSchemaPatches {
		def, ok := getPath(v.root, "definitions", p.definition).(map[string]interface{})
		if !ok {
			t.Fatalf("schema patch: no definition %s", p.definition)
		}
		parent := getPath(def, toPath(p.path[:len(p.path)-1])...)
		m, ok := parent.(map[string]interface{})
		if !ok {
			t.Fatalf("schema patch: %s has no %v", p.definition, p.path[:len(p.path)-1])
		}
		m[p.path[len(p.path)-1]] = p.schema
	}
	return v
}

func toPath(s []string) []interface{} {
	out := make([]interface{}, len(s))
	for i, e := range s {
		out[i] = e
	}
	return out
}

func TestTemplateMatchesSAMSchema(t *testing.T) {
	tpl := loadTemplate(t, filepath.Join(repoRoot(t), "template.yaml"))
	v := samValidator(t)
	for _, e := range v.Validate(tpl.doc) {
		t.Errorf("template.yaml does not match goformation's SAM schema: %s", e)
	}
}

func TestSAMSchemaPatchesAreStillNeeded(t *testing.T) {
	v, err := newSchemaValidator(rawSAMSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range samSchemaPatches {
		def := getPath(v.root, "definitions", p.definition)
		if getPath(def, toPath(p.path)...) != nil {
			t.Errorf("goformation's schema now has %s %v: remove that patch from samSchemaPatches", p.definition, p.path)
		}
	}
	// And without the patches, the real template is refused exactly there.
	tpl := loadTemplate(t, filepath.Join(repoRoot(t), "template.yaml"))
	errs := v.Validate(tpl.doc)
	for _, want := range []string{"LoggingConfig", "EnableIamAuthorizer"} {
		found := false
		for _, e := range errs {
			if strings.Contains(e.Msg, want) || strings.Contains(e.Path, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("the unpatched schema accepts %s: the patch is not needed (errors: %v)", want, errs)
		}
	}
}

// The validator itself must refuse what the schema refuses; a validator that
// accepts everything would make TestTemplateMatchesSAMSchema worthless.
func TestSAMSchemaValidationCatchesMistakes(t *testing.T) {
	v := samValidator(t)
	base := loadTemplate(t, filepath.Join(repoRoot(t), "template.yaml")).doc
	fn := []interface{}{"Resources", "CsrfnFunction", "Properties"}
	cases := []struct {
		name   string
		path   []interface{}
		value  interface{}
		del    bool
		expect string // part of the error path
	}{
		{"misspelt function property", append(fn, "MemorySizeMB"), 1769.0, false, "/Resources/CsrfnFunction"},
		{"timeout as text", append(fn, "Timeout"), "three minutes", false, "/Resources/CsrfnFunction/Properties/Timeout"},
		{"unknown deletion policy", []interface{}{"Resources", "SealingKey", "DeletionPolicy"}, "Keep", false, "/Resources/SealingKey/DeletionPolicy"},
		{"schedule event without schedule", append(fn, "Events", "Renewal", "Properties", "Schedule"), nil, true, "/Resources/CsrfnFunction/Properties/Events/Renewal"},
		{"misspelt bucket property", []interface{}{"Resources", "KeyBucket", "Properties", "Versioning"}, map[string]interface{}{"Status": "Enabled"}, false, "/Resources/KeyBucket/Properties"},
		{"unknown resource type", []interface{}{"Resources", "KeyBucket", "Type"}, "AWS::S3::Bukket", false, "/Resources/KeyBucket"},
		{"unknown top-level section", []interface{}{"Resource"}, map[string]interface{}{}, false, "/"},
		{"bad HttpApi auth type", []interface{}{"Resources", "CsrfnHttpApi", "Properties", "Auth", "EnableIamAuthorizer"}, "yes", false, "/Resources/CsrfnHttpApi/Properties/Auth/EnableIamAuthorizer"},
		{"unresolved intrinsic where a number goes", append(fn, "MemorySize"), map[string]interface{}{"Fn::Select": []interface{}{0.0, []interface{}{1.0}}}, false, "/Resources/CsrfnFunction/Properties/MemorySize"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := deepCopy(base)
			if err := setPath(doc, c.value, c.del, c.path...); err != nil {
				t.Fatal(err)
			}
			errs := v.Validate(doc)
			if len(errs) == 0 {
				t.Fatalf("the schema accepted it")
			}
			for _, e := range errs {
				if strings.HasPrefix(e.Path, c.expect) {
					return
				}
			}
			t.Errorf("no error under %s: %v", c.expect, errs)
		})
	}
}

// goformation reads the whole template into its typed model, with every
// resource as its own type (none falls back to a custom resource), and the
// function is what `sam build` and Lambda need.
func TestTemplateParsesWithGoformation(t *testing.T) {
	tpl := loadTemplate(t, filepath.Join(repoRoot(t), "template.yaml"))
	resources := getPath(tpl.doc, "Resources").(map[string]interface{})
	if len(tpl.typed.Resources) != len(resources) {
		t.Fatalf("goformation read %d resources, the template has %d", len(tpl.typed.Resources), len(resources))
	}
	for name, r := range tpl.typed.Resources {
		want := str(getPath(resources, name, "Type"))
		if got := r.AWSCloudFormationType(); got != want {
			t.Errorf("%s: goformation read it as %s, the template says %s", name, got, want)
		}
		if _, custom := r.(*cloudformation.CustomResource); custom {
			t.Errorf("%s (%s): goformation has no type for it", name, want)
		}
	}

	fn, err := tpl.typed.GetServerlessFunctionWithName("CsrfnFunction")
	if err != nil {
		t.Fatal(err)
	}
	if fn.Runtime == nil || *fn.Runtime != "provided.al2023" {
		t.Errorf("Runtime = %v, want provided.al2023", fn.Runtime)
	}
	if len(fn.Architectures) != 1 || fn.Architectures[0] != "arm64" {
		t.Errorf("Architectures = %v, want [arm64]", fn.Architectures)
	}
	if fn.Handler == nil || *fn.Handler != "bootstrap" {
		t.Errorf("Handler = %v, want bootstrap", fn.Handler)
	}
	if fn.AWSCloudFormationMetadata["BuildMethod"] != "makefile" {
		t.Errorf("Metadata.BuildMethod = %v, want makefile (sam build runs make build-CsrfnFunction)", fn.AWSCloudFormationMetadata["BuildMethod"])
	}
	if fn.CodeUri == nil || fn.CodeUri.String == nil || *fn.CodeUri.String != "." {
		t.Errorf("CodeUri must be the repository root, where the Makefile is")
	}
	// 1,769 MB is one full vCPU; less would slow every key generation down.
	if fn.MemorySize == nil || *fn.MemorySize != 1769 {
		t.Errorf("MemorySize (the parameter's default) = %v, want 1769", fn.MemorySize)
	}
	// A batch of 100 RSA_4096 keys takes about a minute at one vCPU.
	if fn.Timeout == nil || *fn.Timeout < 120 || *fn.Timeout > 900 {
		t.Errorf("Timeout = %v, want 120..900 s", fn.Timeout)
	}
	if fn.Role == nil || *fn.Role == "" {
		t.Errorf("the function has no explicit role")
	}
	p, ok := tpl.typed.Parameters["MemorySize"]
	if !ok || p.Type != "Number" {
		t.Errorf("MemorySize must be a Number parameter")
	}
}
